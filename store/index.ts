/** The image store: one interface, chosen by URL (file:// or s3://). See docs/storage.md. */
export type { ImageStore, Progress, StoredCheckpoint, StoreOptions, S3Options, TransferOptions } from './image-store';
export { openStore } from './open-store';
export { parseLocation, splitCheckpointUrl, checkKey } from './location';
export { StoreError, isStoreError, type StoreReason } from './errors';
export { keyRingFrom, type KeyRing } from './cipher';
export { findOrphans, removeOrphans } from './orphans';
export { storeSecretsFromDir, storeSecretsFromEnv, type StoreSecrets } from './credentials';
export { publishCheckpoint, fetchCheckpoint } from './publish';
