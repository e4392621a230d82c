/** The sample checkpoint of the store tests: the bench's (bench/sample-checkpoint.ts). */
export { bytes, keyPair, makeCheckpoint, readTree, tempDir } from '../../bench/sample-checkpoint';
