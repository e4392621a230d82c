/**
 * Dump of a local process into an image directory: the process alone, or with its descendants (a process
 * with children or pipes is frozen and dumped as a tree: pipes are saved only with every holder).
 *
 * The native core stops the task, writes pages-1.img and returns the rest of its state; the image module
 * writes the CRIU images and, last, the manifest. With leaveRunning the task is frozen only while a
 * copy-on-write snapshot is taken (the parasite forks inside it); its pages are written afterwards.
 * Without it the task is left stopped (SIGSTOP) until the images are complete, then killed; if writing
 * them fails it is resumed (SIGCONT) and the partial images are removed, so a failed checkpoint loses
 * nothing.
 *
 * The image writer (~25 ms to load here, with its generated codecs) is loaded while the native
 * dump runs on its pool thread, not before: `cryopod dump` is timed from its start.
 */
import * as fs from 'fs';
import * as path from 'path';
import { dumpTask, dumpTree } from '../native/lib';
import type { DumpedTree, DumpMethod, FreezerSpec } from '../native/lib';
import { PAGES_FILE } from '../images/magic';
import type * as ImageWriter from '../images/write';
import type * as ImageCodecs from '../images/proto';
import { CheckpointError } from './errors';
import { startGuard } from './guard';
import { checkWritableDir } from './image-dir';
import { phaseStep } from './phase';
import { waitForExit } from './process-state';

export interface DumpSummary {
  dir: string;
  pid: number;
  /** Processes dumped (1, or the whole tree). */
  tasks: number;
  pages: number;
  bytes: number;
  vmas: number;
  frozenSeconds: number;
  totalSeconds: number;
  /** How the pages left each task that had any (the parasite, or process_vm_readv), in tree order. */
  pagesMethods: DumpMethod[];
  /** With a short freeze: snapshot pages the task rewrote while they were written (extra memory). */
  snapshotPrivateBytes?: number;
}

export async function dumpProcess(opts: {
  pid: number;
  dir: string;
  leaveRunning?: boolean;
  method?: DumpMethod;
  /** Freeze this cgroup for the snapshot (the node agent passes the container's cgroup). */
  freezer?: FreezerSpec;
  /**
   * With leaveRunning: freeze the task only for a copy-on-write snapshot and write the pages after it
   * runs again (default true; false keeps it frozen until every page is written).
   */
  shortFreeze?: boolean;
  /** The stepping hook (native/lib DumpOptions.phaseFd), with one more phase here: images. */
  phaseFd?: number;
}): Promise<DumpSummary> {
  const started = process.hrtime.bigint();
  if (!Number.isInteger(opts.pid) || opts.pid <= 0) throw new CheckpointError('EINVAL', `pid must be a positive integer, got ${opts.pid}`);
  const dir = checkWritableDir(opts.dir);
  // From here until done(), a dumper that dies leaves the task to its guard (guard.ts).
  const guard = startGuard(opts.pid);
  try {
    return await dumpGuarded(opts, dir, started);
  } finally {
    guard.done();
  }
}

async function dumpGuarded(opts: Parameters<typeof dumpProcess>[0], dir: string, started: bigint): Promise<DumpSummary> {
  const leaveRunning = !!opts.leaveRunning;
  const pagesPath = path.join(dir, PAGES_FILE);
  if (needsTree(opts.pid)) return dumpWholeTree(opts.pid, dir, leaveRunning, opts.method, opts.freezer, started, opts.phaseFd);

  let task;
  try {
    const dumping = dumpTask({
      pid: opts.pid,
      pagesPath,
      leaveRunning,
      stopAfter: !leaveRunning,
      method: opts.method,
      freezer: opts.freezer,
      snapshot: leaveRunning && (opts.shortFreeze ?? true) && (opts.method ?? 'parasite') === 'parasite',
      ...(opts.phaseFd !== undefined ? { phaseFd: opts.phaseFd } : {}),
    });
    await warmWhile(dumping);
    task = await dumping;
  } catch (err) {
    fs.rmSync(pagesPath, { force: true });
    throw err;
  }

  let written: { files: string[]; bytes: number };
  try {
    phaseStep(opts.phaseFd, 'images');
    written = await images().writeCheckpoint(dir, task);
  } catch (err) {
    if (!leaveRunning) process.kill(opts.pid, 'SIGCONT');
    removeImages(dir);
    throw err;
  }
  if (!leaveRunning) {
    process.kill(opts.pid, 'SIGKILL');
    await waitForExit(opts.pid);
  }

  const pages = task.pages.reduce((n, r) => n + r.nrPages, 0);
  return {
    dir,
    pid: opts.pid,
    tasks: 1,
    pages,
    bytes: written.bytes,
    vmas: task.vmas.length,
    pagesMethods: task.pagesMethod ? [task.pagesMethod] : [],
    frozenSeconds: task.frozenSeconds,
    totalSeconds: Number(process.hrtime.bigint() - started) / 1e9,
    ...(task.snapshot ? { snapshotPrivateBytes: task.snapshot.privateBytes } : {}),
  };
}

/** A process with children or pipes is dumped as a tree: pipes are saved only with every holder. */
/**
 * Loads the image writer and its codecs (and, without generated codecs, generates them) on this thread while the native dump runs on its
 * pool thread (a dump that fails early just finds them ready for next time).
 */
async function warmWhile(dumping: Promise<unknown>): Promise<void> {
  await new Promise((r) => setImmediate(r)); // the addon call is queued; let it start
  images(); // the writer itself, and
  codecs().warmUp(); // its codecs
  void dumping.catch(() => undefined); // its failure is the caller's, awaited right after
}

/**
 * The image writer and its codecs, loaded on first use (after the native dump was started): the writer
 * alone, not the whole image module with its reader and summaries.
 */
function images(): typeof ImageWriter {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../images/write') as typeof ImageWriter;
}

function codecs(): typeof ImageCodecs {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../images/proto') as typeof ImageCodecs;
}

function needsTree(pid: number): boolean {
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      if (fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim() !== '') return true;
    }
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('pipe:[')) return true;
    }
  } catch {
    // the process is gone or not ours to read: the native core reports it clearly
  }
  return false;
}

async function dumpWholeTree(
  pid: number,
  dir: string,
  leaveRunning: boolean,
  method: DumpMethod | undefined,
  freezer: FreezerSpec | undefined,
  started: bigint,
  phaseFd: number | undefined,
): Promise<DumpSummary> {
  let tree: DumpedTree;
  try {
    const dumping = dumpTree({ pid, pagesDir: dir, leaveRunning, stopAfter: !leaveRunning, method, freezer, ...(phaseFd !== undefined ? { phaseFd } : {}) });
    await warmWhile(dumping);
    tree = await dumping;
  } catch (err) {
    removeImages(dir);
    throw err;
  }
  let written: { files: string[]; bytes: number };
  try {
    phaseStep(phaseFd, 'images');
    written = await images().writeCheckpoint(dir, tree);
  } catch (err) {
    if (!leaveRunning) for (const t of tree.tasks) signal(t.hostPid ?? t.pid, 'SIGCONT');
    removeImages(dir);
    throw err;
  }
  if (!leaveRunning) {
    const root = tree.tasks[0];
    if (root.ownPidNamespace && root.pid === 1) {
      // The init of its own PID namespace: its death kills every task of the namespace at once. One by
      // one, a child's death could orphan the init's process group, and the kernel would SIGCONT the
      // stopped init (which ignores the SIGHUP that comes with it) and let it run.
      signal(root.hostPid ?? root.pid, 'SIGKILL');
    } else {
      // Children first: a parent must not see a child die while it could still run.
      for (const t of [...tree.tasks].reverse()) signal(t.hostPid ?? t.pid, 'SIGKILL');
    }
    for (const t of tree.tasks) await waitForExit(t.hostPid ?? t.pid);
  }
  return {
    dir,
    pid,
    tasks: tree.tasks.length,
    pages: tree.tasks.reduce((n, t) => n + t.pages.reduce((m, r) => m + r.nrPages, 0), 0),
    bytes: written.bytes,
    vmas: tree.tasks.reduce((n, t) => n + t.vmas.length, 0),
    pagesMethods: tree.tasks.flatMap((t) => (t.pagesMethod ? [t.pagesMethod] : [])),
    frozenSeconds: tree.frozenSeconds,
    totalSeconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function removeImages(dir: string): void {
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.img') || f.startsWith('cryopod-')) fs.rmSync(path.join(dir, f), { force: true });
}
