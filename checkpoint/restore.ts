/**
 * Restore of a checkpoint: one process, or a whole process tree (with its PIDs, sessions, groups and
 * pipes). The one restore path of the CLI and the node agent, with every check:
 *
 *   readVerified(dir)      metadata images read and checked against the manifest's sha256 before
 *                          anything is decoded; the pages files' sizes checked; their digests kept
 *   restoreVerified(...)   the native morph of a stub (started here, or the restore pod's container
 *                          stub given by pid): the native fill hashes each pages image in the same
 *                          pass that writes it into the stopped stub, from the one fd it opened, so the
 *                          bytes that reach the task are the bytes that were verified (no second open
 *                          by path, no window between hashing and filling). A mismatch fails with the
 *                          reader's ECHECKSUM naming the file, and the half-built stub is killed: the
 *                          saved task never runs one instruction from a tampered image.
 *   restoreProcess({dir})  both, for a local restore: when root restores, the process gets the saved
 *                          real uid/gid back, never more, and only as far as whoever could have
 *                          written the image had them (local-creds.ts).
 *
 * `lazy` (MorphOptions, restoreProcess; `cryopod restore --lazy`, and the agent's option): the task runs
 * before its private anonymous memory is resident. The native pager serves each page fault from the
 * pages image, verifying the whole 1 MiB chunk that holds the page against the manifest's per-chunk
 * BLAKE3 (v4) before copying it in, while a prefetcher fills the rest; a chunk that fails kills the task
 * before it uses a byte of it (native/src/core/lazy_pager.h). startRestore resolves when the task runs;
 * its `resident` when every page is in. Trees, and checkpoints without per-chunk digests, are restored
 * eagerly (`eagerReason` says why). The restoring process is the page server: it must stay up until
 * `resident` settles (its exit kills a task not yet resident).
 */
import * as path from 'path';
import { abortLazy, restoreTask, restoreTaskLazy, restoreTree, waitResident } from '../native/lib';
import type { DumpedTask, DumpedTree, InheritFd, PagesDigest, Residency } from '../native/lib';
import { ImageError } from '../images/errors';
import type * as ImageReader from '../images/read';
import { checkReadableDir } from './image-dir';
import { localRestoreCreds, type LocalCredsOptions } from './local-creds';

/** A checkpoint whose metadata is verified; its pages images are verified as they are filled. */
export interface VerifiedCheckpoint {
  tree: DumpedTree;
  /** The root task (tree.tasks[0]). */
  task: DumpedTask;
  /** The pages file of each task, in tree order; pagesPath is the root's. */
  pagesPaths: string[];
  pagesPath: string;
  /** The manifest's digest of each pages file (tree order), for the native fill to check. */
  pagesDigests: PagesDigest[];
}

export interface RestoreSummary {
  pid: number;
  /** Whole restore. */
  seconds: number;
  /**
   * Reading and verifying the metadata images (and the pages files' sizes) before anything is mapped.
   * The pages images' BLAKE3 hash is computed during the morph, overlapped with the memory fill.
   */
  verifySeconds: number;
  /** The native morph of the stub into the saved task, including the pages images' verification. */
  morphSeconds: number;
  /** With `lazy`: what serves the task's pages (seconds counted from the restore's start). */
  lazy?: LazyProgress<Residency & { seconds: number }>;
}

/** A lazy restore's second half: the task runs, its pages still arriving. */
export interface LazyProgress<R = Residency> {
  /** Set when the restore filled the memory eagerly after all: why (a tree, an older checkpoint, no serving userfaultfd). */
  eagerReason?: string;
  /** Settles when every page is in (or the task exited); rejects when the pager killed it (ECHECKSUM naming the chunk, EBOUNDS, ...). */
  resident: Promise<R>;
  /** Kills the task if it is not resident yet (the server is going away); `resident` then rejects (EABORTED). */
  abort(reason: string): void;
}

export interface RestoreStarted extends LazyProgress {
  pid: number;
}

/** Reads `dir` and verifies everything but the pages images' contents (see restoreVerified). */
export async function readVerified(dir: string): Promise<VerifiedCheckpoint> {
  // Loaded here, not at startup: a dump does not need the reader (see dump.ts); and the reader alone,
  // not the whole image module with its writer and summaries (~20-60 ms less to load before the morph).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { readCheckpoint } = require('../images/read') as typeof ImageReader;
  const { tree, task, pagesPaths, pagesPath, pagesDigests } = await readCheckpoint(checkReadableDir(dir), { deferPagesHash: true });
  if (pagesDigests === undefined || pagesDigests.length !== pagesPaths.length) {
    throw new Error('internal: the reader returned no pages digest for every pages image');
  }
  return { tree, task, pagesPaths, pagesPath, pagesDigests };
}

export interface MorphOptions {
  /** Morph this running stub (a restore pod's container) instead of starting one. */
  stubPid?: number;
  /** Credentials for a stub started here (root only); the saved ones, never more. */
  uid?: number;
  gid?: number;
  /**
   * What replaces each external fd (a pipe whose other end was outside the checkpointed tree): see
   * InheritFd. Without one, a saved fd 0, 1 or 2 takes this process's own (the stub's own with stubPid).
   */
  inheritFds?: InheritFd[];
  /** Serve the memory lazily (see the header); `prefetch: false` only faults pages in (tests). */
  lazy?: boolean | { prefetch?: boolean };
  /** The native restore's stepping hook (native/lib RestoreOptions.phaseFd). */
  phaseFd?: number;
}

/**
 * Morphs a stub into the checkpoint (see restoreVerified); with `opts.lazy`, resolves as soon as the task
 * runs, its pages served lazily until `resident` settles. Without it, `resident` is settled at once.
 */
export async function startRestore(cp: VerifiedCheckpoint, opts: MorphOptions = {}): Promise<RestoreStarted> {
  const eager = (pid: number, eagerReason?: string): RestoreStarted => ({
    pid,
    ...(eagerReason !== undefined ? { eagerReason } : {}),
    resident: Promise.resolve(eagerResidency),
    abort: () => undefined,
  });
  const single = cp.tree.tasks.length === 1 && cp.tree.pipes.length === 0;
  if (opts.lazy === undefined || opts.lazy === false) return eager(await restoreVerified(cp, opts));
  if (!single) return eager(await restoreVerified(cp, opts), 'a process tree (or a process with pipes) is restored eagerly: its children are forked from restored parents');
  const prefetch = typeof opts.lazy === 'object' ? opts.lazy.prefetch : undefined;
  let r;
  try {
    r = await restoreTaskLazy({ task: cp.task, pagesPath: cp.pagesPath, pagesDigest: checkedDigests(cp)[0], ...extraOf(opts), ...(prefetch !== undefined ? { prefetch } : {}) });
  } catch (err) {
    throw asImageError(err);
  }
  const pager = r.pager;
  if (pager === undefined) return eager(r.pid, r.eagerReason ?? 'not served lazily');
  const resident = waitResident(pager).catch((err: unknown) => {
    throw asImageError(err);
  });
  resident.catch(() => undefined);  // the caller may never look: no unhandled rejection
  return { pid: r.pid, resident, abort: (reason) => abortLazy(pager, reason) };
}

const eagerResidency: Residency = { state: 'resident', chunks: 0, eagerChunks: 0, faultChunks: 0, prefetchedChunks: 0, faults: 0, zeroFaults: 0, residentSeconds: 0 };

function checkedDigests(cp: VerifiedCheckpoint): PagesDigest[] {
  if (!Array.isArray(cp.pagesDigests) || cp.pagesDigests.length !== cp.pagesPaths.length) {
    throw new TypeError(`a pages digest is needed for every pages image (${cp.pagesPaths.length}): the fill verifies them`);
  }
  return cp.pagesDigests;
}

function extraOf(opts: MorphOptions): { stubPid?: number; inheritFds?: InheritFd[]; phaseFd?: number; uid?: number; gid?: number } {
  return {
    ...(opts.stubPid !== undefined ? { stubPid: opts.stubPid } : {}),
    ...(opts.inheritFds !== undefined ? { inheritFds: opts.inheritFds } : {}),
    ...(opts.phaseFd !== undefined ? { phaseFd: opts.phaseFd } : {}),
    ...credsOf(opts),
  };
}

/**
 * Morphs a stub into the checkpoint (a tree when it holds several processes or pipes); resolves to the
 * root's pid. Every pages image is verified by the fill against cp.pagesDigests. Always eager
 * (`opts.lazy` is startRestore's).
 */
export async function restoreVerified(cp: VerifiedCheckpoint, opts: MorphOptions = {}): Promise<number> {
  const { tree, task, pagesPaths, pagesPath } = cp;
  const pagesDigests = checkedDigests(cp);
  const extra = extraOf(opts);
  try {
    // A tree (or a process with pipes) comes back whole, with its PIDs; a lone process may take a new PID.
    return tree.tasks.length > 1 || tree.pipes.length > 0
      ? await restoreTree({ tree, pagesPaths, pagesDigests, ...extra })
      : await restoreTask({ task, pagesPath, pagesDigest: pagesDigests[0], ...extra });
  } catch (err) {
    throw asImageError(err);
  }
}

/**
 * `inheritFds`: as MorphOptions.inheritFds. Run by root, the process gets the saved uid/gid only as far
 * as the image's writers could have had them (local-creds.ts; `unsigned` and `trustSavedCredentials`
 * there); run by anyone else, that user's own.
 */
export async function restoreProcess(opts: { dir: string; inheritFds?: InheritFd[]; lazy?: MorphOptions['lazy'] } & LocalCredsOptions): Promise<RestoreSummary> {
  const started = process.hrtime.bigint();
  const since = (): number => Number(process.hrtime.bigint() - started) / 1e9;
  const cp = await readVerified(opts.dir);
  const verified = process.hrtime.bigint();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const creds = asRoot ? localRestoreCreds(path.resolve(opts.dir), cp.task.creds, opts) : {};
  const r = await startRestore(cp, { ...creds, ...(opts.inheritFds !== undefined ? { inheritFds: opts.inheritFds } : {}), ...(opts.lazy !== undefined ? { lazy: opts.lazy } : {}) });
  const done = process.hrtime.bigint();
  const summary: RestoreSummary = {
    pid: r.pid,
    seconds: Number(done - started) / 1e9,
    verifySeconds: Number(verified - started) / 1e9,
    morphSeconds: Number(done - verified) / 1e9,
  };
  if (opts.lazy === undefined || opts.lazy === false) return summary;
  const resident = r.resident.then((res) => ({ ...res, seconds: since() }));
  resident.catch(() => undefined);
  return { ...summary, lazy: { ...(r.eagerReason !== undefined ? { eagerReason: r.eagerReason } : {}), resident, abort: r.abort } };
}

function credsOf(o: MorphOptions): { uid?: number; gid?: number } {
  return { ...(o.uid !== undefined ? { uid: o.uid } : {}), ...(o.gid !== undefined ? { gid: o.gid } : {}) };
}

/** The native fill's verify failure ("<path>: blake3 is X, the manifest says Y") as the reader's own error. */
function asImageError(err: unknown): unknown {
  const e = err as { code?: string; message?: string; op?: string; path?: string };
  if (e?.code !== 'ECHECKSUM' || e.op !== 'verify' || typeof e.path !== 'string' || typeof e.message !== 'string') return err;
  const detail = e.message.startsWith(`${e.path}: `) ? e.message.slice(e.path.length + 2) : e.message;
  return new ImageError('ECHECKSUM', path.basename(e.path), detail, { cause: err });
}
