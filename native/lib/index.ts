/**
 * The native core, typed: dump one task into a pages image and a DumpedTask; restore a DumpedTask into a
 * new process morphed from the restore stub. Arguments are checked here with exact messages, and again
 * natively (after better-sqlite3): a bad call fails in JS before it reaches ptrace.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { DumpedTask, DumpedTree, DumpOptions, FdReport, FreezerSpec, InheritFd, RescueReport, RestoreOptions, TreeDumpOptions, TreeRestoreOptions } from './types';

export * from './types';

/**
 * A pages image's digest as the manifest lists it: a sha256, or (manifest v3) a BLAKE3, exactly one
 * (`chunkBytes`: over the digests of chunks of that size; always set with blake3). Given to a restore, the native fill hashes the image in the same pass that writes its pages
 * into the stopped stub, and fails with ECHECKSUM (killing the stub, which has run nothing) on a
 * mismatch: the caller may then skip hashing that file itself (see checkpoint/restore.ts).
 */
export interface PagesDigest {
  sha256?: string;
  blake3?: string;
  chunkBytes?: number;
  /** Manifest v4: every chunk's BLAKE3, hex, in order; a lazy restore verifies chunks one by one with it. */
  chunkBlake3?: string;
}

/** How a lazy restore's pager ended (native/src/core/lazy_pager.h). */
export interface Residency {
  /** 'resident': every page is in and the task is an ordinary process; 'exited': it ended before. */
  state: 'resident' | 'exited';
  chunks: number;
  /** Filled before the task ran (chunks holding pages outside the served ranges). */
  eagerChunks: number;
  /** First needed by a page fault. */
  faultChunks: number;
  /** Filled by the prefetcher before anything touched them. */
  prefetchedChunks: number;
  faults: number;
  zeroFaults: number;
  /** From the task's release to fully resident. */
  residentSeconds: number;
}

/** A lazy restore under way: the task runs; `pager` serves it (absent when it was filled eagerly after all, why in eagerReason). */
export interface LazyRestored {
  pid: number;
  pager?: number;
  eagerReason?: string;
}

interface Addon {
  dump(opts: {
    pid: number;
    pagesPath: string;
    leaveRunning: boolean;
    stopAfter: boolean;
    parasitePath?: string;
    pipes?: number;
    freezer?: FreezerSpec;
    snapshot?: boolean;
    phaseFd?: number;
  }): Promise<DumpedTask>;
  rescue(opts: { pid: number; childrenSince?: number; resumeStopped?: boolean; untracedTimeoutMs?: number }): Promise<RescueReport>;
  restore(opts: RestoreOptions & { pagesDigest?: PagesDigest }): Promise<number>;
  restore(opts: RestoreOptions & { pagesDigest?: PagesDigest; lazy: { prefetch?: boolean } }): Promise<LazyRestored>;
  lazyWait(opts: { pager: number }): Promise<Residency>;
  lazyAbort(opts: { pager: number; reason: string }): void;
  parasiteRoundTrips(opts: { pid: number; parasitePath: string; iterations: number }): Promise<ParasiteCheck>;
  dumpTree(opts: {
    pid: number;
    pagesDir: string;
    leaveRunning: boolean;
    stopAfter: boolean;
    parasitePath?: string;
    pipes?: number;
    freezer?: FreezerSpec;
    phaseFd?: number;
  }): Promise<DumpedTree>;
  restoreTree(opts: {
    tree: DumpedTree;
    pagesPaths: string[];
    stubPath: string;
    uid?: number;
    gid?: number;
    pagesDigests?: Array<PagesDigest | undefined>;
    inheritFds?: InheritFd[];
  }): Promise<number>;
  preflight(opts: { pid: number }): Promise<FdReport[]>;
  hashFile(opts: { path: string; algorithm: 'blake3' | 'sha256'; chunkBytes: number }): Promise<string>;
  hashFile(opts: { path: string; algorithm: 'blake3'; chunkBytes: number; withChunks: true }): Promise<{ root: string; chunks: string }>;
}

/**
 * The chunked digest of a file (the hash over its chunks' digests, the chunks hashed on every core), as
 * the manifest lists pages images: for verifiers that check one without filling a task (the manifest's
 * full verify, the seal).
 */
export async function hashFileChunked(file: string, algorithm: 'blake3' | 'sha256', chunkBytes: number): Promise<string> {
  if (typeof file !== 'string' || file === '') throw new TypeError('file must be a path');
  return load().hashFile({ path: file, algorithm, chunkBytes });
}

/** hashFileChunked's BLAKE3 root, and every chunk's digest (hex, concatenated in order): manifest v4's pages entry. */
export async function hashFileWithChunks(file: string, chunkBytes: number): Promise<{ root: string; chunks: string }> {
  if (typeof file !== 'string' || file === '') throw new TypeError('file must be a path');
  return load().hashFile({ path: file, algorithm: 'blake3', chunkBytes, withChunks: true });
}

/**
 * The preflight of a dump, for `cryopod dump --check` and the agent before it freezes anything: every
 * fd the process tree rooted at `pid` holds, and whether it can be saved ('saved'), is external (a pipe
 * held outside the tree too: re-attached on restore) or 'refused' (why in `note`). Reads /proc only.
 */
export async function preflight(pid: number): Promise<FdReport[]> {
  checkPid(pid);
  return load().preflight({ pid });
}

/**
 * Dumps a process and all its descendants, frozen together; pipes among them are saved with their
 * contents. A pipe shared with a process outside the tree is external: saved by identity (state.num
 * external = 1), re-attached on restore (RestoreOptions.inheritFds). Anything the preflight refuses fails
 * the dump (EUNSUPPORTED, naming the fd) before any task is stopped.
 */
export async function dumpTree(opts: TreeDumpOptions): Promise<DumpedTree> {
  checkPid(opts.pid);
  if (typeof opts.pagesDir !== 'string' || !path.isAbsolute(opts.pagesDir)) {
    throw new TypeError(`pagesDir must be an absolute path, got ${String(opts.pagesDir)}`);
  }
  const method = opts.method ?? 'parasite';
  if (method !== 'parasite' && method !== 'vm_readv') throw new TypeError(`method must be 'parasite' or 'vm_readv', got ${String(method)}`);
  return load().dumpTree({
    pid: opts.pid,
    pagesDir: opts.pagesDir,
    leaveRunning: !!opts.leaveRunning,
    stopAfter: !!opts.stopAfter,
    ...(method === 'parasite' ? { parasitePath: PARASITE_PATH } : {}),
    ...(opts.pipes !== undefined ? { pipes: opts.pipes } : {}),
    ...(opts.freezer ? { freezer: checkFreezer(opts.freezer) } : {}),
    ...(opts.phaseFd !== undefined ? { phaseFd: opts.phaseFd } : {}),
  });
}

/** Restores a process tree with its own PIDs; resolves to the root's PID. */
export async function restoreTree(opts: TreeRestoreOptions & { pagesDigests?: Array<PagesDigest | undefined> }): Promise<number> {
  if (!Array.isArray(opts.pagesPaths) || opts.pagesPaths.length !== opts.tree.tasks.length) {
    throw new TypeError(`pagesPaths must hold one path per task (${opts.tree.tasks.length})`);
  }
  if (opts.pagesDigests !== undefined && (!Array.isArray(opts.pagesDigests) || opts.pagesDigests.length !== opts.pagesPaths.length)) {
    throw new TypeError(`pagesDigests must hold one entry per pages path (${opts.pagesPaths.length})`);
  }
  const stubPath = opts.stubPath ?? STUB_PATH;
  if (!fs.existsSync(stubPath)) throw new Error(`the restore stub is not built (${stubPath} is missing): run npm run build`);
  return load().restoreTree({ ...opts, stubPath });
}

/** What parasiteRoundTrips found: counts of iterations that left a trace (all 0 when the cure is exact). */
export interface ParasiteCheck {
  iterations: number;
  regsChanged: number;
  xsaveChanged: number;
  wrongPid: number;
}

/** Infects and cures a task `iterations` times, comparing its registers and XSAVE area each time. */
export async function parasiteRoundTrips(pid: number, iterations: number): Promise<ParasiteCheck> {
  checkPid(pid);
  if (!Number.isInteger(iterations) || iterations < 1) throw new TypeError(`iterations must be a positive integer`);
  return load().parasiteRoundTrips({ pid, parasitePath: PARASITE_PATH, iterations });
}

/** The repository root, found from this file whether it runs from native/lib or dist/native/lib. */
function packageRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find package.json above ${__dirname}`);
    dir = up;
  }
  return dir;
}

const root = packageRoot();
export const ADDON_PATH = path.join(root, 'native', 'build', 'Release', 'cryopod.node');
export const STUB_PATH = path.join(root, 'native', 'stub', 'cryopod-stub');
export const PARASITE_PATH = path.join(root, 'native', 'parasite', 'parasite.bin');
/** The dump's guard (native/guard): puts a task back when its dumper dies (checkpoint/guard.ts). */
export const GUARD_PATH = path.join(root, 'native', 'guard', 'cryopod-guard');

let addon: Addon | undefined;
function load(): Addon {
  if (!addon) {
    if (!fs.existsSync(ADDON_PATH)) {
      throw new Error(`the native core is not built (${ADDON_PATH} is missing): run npm run build`);
    }
    addon = require(ADDON_PATH) as Addon;
  }
  return addon;
}

function checkPid(pid: unknown): asserts pid is number {
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || pid > 4194304) {
    throw new TypeError(`pid must be a positive integer, got ${String(pid)}`);
  }
}

function checkFreezer(f: FreezerSpec): FreezerSpec {
  if (f.kind !== 'v1' && f.kind !== 'v2') throw new TypeError(`freezer.kind must be 'v1' or 'v2', got ${String(f.kind)}`);
  const control = path.join(f.path, f.kind === 'v1' ? 'freezer.state' : 'cgroup.freeze');
  if (!path.isAbsolute(f.path) || !fs.existsSync(control)) throw new TypeError(`freezer.path ${f.path} is not a ${f.kind} cgroup (no ${control})`);
  return { kind: f.kind, path: f.path };
}

export async function dumpTask(opts: DumpOptions): Promise<DumpedTask> {
  checkPid(opts.pid);
  if (typeof opts.pagesPath !== 'string' || !path.isAbsolute(opts.pagesPath)) {
    throw new TypeError(`pagesPath must be an absolute path, got ${String(opts.pagesPath)}`);
  }
  const method = opts.method ?? 'parasite';
  if (method !== 'parasite' && method !== 'vm_readv') throw new TypeError(`method must be 'parasite' or 'vm_readv', got ${String(method)}`);
  if (opts.pipes !== undefined && (!Number.isInteger(opts.pipes) || opts.pipes < 1 || opts.pipes > 16)) {
    throw new TypeError(`pipes must be an integer from 1 to 16, got ${String(opts.pipes)}`);
  }
  if (method === 'parasite' && !fs.existsSync(PARASITE_PATH)) {
    throw new Error(`the parasite blob is not built (${PARASITE_PATH} is missing): run npm run build`);
  }
  return load().dump({
    pid: opts.pid,
    pagesPath: opts.pagesPath,
    leaveRunning: !!opts.leaveRunning,
    stopAfter: !!opts.stopAfter,
    ...(method === 'parasite' ? { parasitePath: PARASITE_PATH } : {}),
    ...(opts.pipes !== undefined ? { pipes: opts.pipes } : {}),
    ...(opts.freezer ? { freezer: checkFreezer(opts.freezer) } : {}),
    ...(opts.snapshot ? { snapshot: true } : {}),
    ...(opts.phaseFd !== undefined ? { phaseFd: opts.phaseFd } : {}),
  });
}

/**
 * Puts back a task whose dumper died before it was done (native/src/core/rescue.h): waits until it is
 * untraced, puts a task parked in the parasite back from the area's rescue record (registers, mask,
 * FPU state), closes the fds the infection added, unmaps the area, reaps snapshot children (zombies
 * with exit signal 0 started at or after `childrenSince`, clock ticks after boot), and SIGCONTs a
 * group stop when `resumeStopped` says it was the dumper's. A task with nothing of ours is left as it is.
 */
export async function rescueTask(opts: { pid: number; childrenSince?: number; resumeStopped?: boolean; untracedTimeoutMs?: number }): Promise<RescueReport> {
  checkPid(opts.pid);
  return load().rescue({ ...opts });
}

type TaskRestoreOptions = Omit<RestoreOptions, 'stubPath'> & { stubPath?: string; pagesDigest?: PagesDigest };

/**
 * A lazy restore (native/src/core/lazy_pager.h): resolves once the task runs, its private anonymous
 * memory served on fault from the pages image (each 1 MiB chunk verified against the digest's
 * chunkBlake3 on first touch) while a prefetcher (unless `prefetch: false`, for tests) fills the rest.
 * waitResident(pager) then resolves when it is fully resident. A pager whose process exits first kills
 * its task.
 */
export async function restoreTaskLazy(opts: TaskRestoreOptions & { prefetch?: boolean }): Promise<LazyRestored> {
  const { prefetch, ...rest } = opts;
  return load().restore({ ...checkedTaskRestore(rest), lazy: prefetch === undefined ? {} : { prefetch } });
}

/** Resolves when a lazy restore's task is fully resident (or exited); rejects (.code, .path) when the pager killed it. */
export async function waitResident(pager: number): Promise<Residency> {
  return load().lazyWait({ pager });
}

/** Kills a lazily restored task that is not resident yet (its server is going away); waitResident then rejects with EABORTED. */
export function abortLazy(pager: number, reason: string): void {
  load().lazyAbort({ pager, reason });
}

export async function restoreTask(opts: TaskRestoreOptions): Promise<number> {
  return load().restore(checkedTaskRestore(opts));
}

function checkedTaskRestore(opts: TaskRestoreOptions): RestoreOptions & { pagesDigest?: PagesDigest } {
  if (typeof opts.pagesPath !== 'string' || !path.isAbsolute(opts.pagesPath)) {
    throw new TypeError(`pagesPath must be an absolute path, got ${String(opts.pagesPath)}`);
  }
  const stubPath = opts.stubPath ?? STUB_PATH;
  // Morphing a running stub (a restore pod's container) needs no stub binary here.
  if (opts.stubPid === undefined && !fs.existsSync(stubPath)) {
    throw new Error(`the restore stub is not built (${stubPath} is missing): run npm run build`);
  }
  return { ...opts, stubPath };
}
