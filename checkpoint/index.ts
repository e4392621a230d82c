/**
 * The checkpoint library: dump and restore of a local process tree, with every check they need (the
 * target and image directory checked before anything is touched, the task stopped until its images are
 * complete and resumed if they fail, the manifest verified, the pages verified by the fill that writes
 * them, a failed morph's stub killed). The CLI, the node agent, the demo and the bench reach the native
 * core only through here (docs/architecture.md).
 */
export { allSaveable, checkProcess } from './check';
export { dumpProcess } from './dump';
export type { DumpSummary } from './dump';
export { readVerified, restoreProcess, restoreVerified, startRestore } from './restore';
export type { LazyProgress, MorphOptions, RestoreStarted, RestoreSummary, VerifiedCheckpoint } from './restore';
export { livingDescendants, rescueProcess, rescueTree, startTicks } from './rescue';
export type { RescueReport } from './rescue';
export { measurePageDump } from './measure';
export type { PageDumpMeasure } from './measure';
export { checkReadableDir, checkWritableDir } from './image-dir';
export { phaseStep } from './phase';
export { CheckpointError } from './errors';
export { STUB_PATH } from '../native/lib';
export type { DumpedTask, DumpedTree, DumpMethod, FdReport, FreezerSpec, InheritFd, NativeErrorFields, Residency } from '../native/lib';
