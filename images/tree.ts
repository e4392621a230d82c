/**
 * Checks of a process tree as a whole, shared by the writer (EINVAL: never write what cannot be read
 * back) and the reader (EDECODE / EBOUNDS / ETOOBIG, naming the image file):
 *
 *   pstree   at most MAX_TASKS tasks and MAX_TREE_THREADS threads; pids and tids non-zero and unique
 *            across the tree; the root first; every other task's parent an earlier task (so each
 *            parent comes before its children, and no second root); sessions and groups as a restore
 *            can rebuild them: a session leader (sid = pid) leads its group, a
 *            group lies within one session, a task whose session leader is in the tree is in the
 *            leader's session, and a child is in its parent's session unless it leads its own.
 *   shmem    every VMA of a shmem object (shmid) has the same size and path throughout the tree; its
 *            pages are dumped by the first task (tree order) that maps it; any later task that maps it
 *            has no pages in it and inherited the mapping from its parent (same range, same offset).
 *   pipes    (writer) DumpedTree.pipes: ids unique, each held by an fd of some task.
 */

import { DumpedTask, DumpedTree, Vma } from '../native/lib/types';
import { ImageError, ImageErrorCode } from './errors';
import { MAX_TASKS, MAX_TREE_THREADS } from './limits';
import { PAGE_SIZE, imageName } from './magic';

export interface PsTask {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Every thread, the main one included. */
  tids: readonly number[];
}

/** How a failed check becomes an error: the code for this kind of failure, the file it concerns. */
export type Fail = (code: ImageErrorCode, file: string | undefined, message: string) => ImageError;

export const writerFail: Fail = (code, _file, message) => new ImageError(code === 'EBOUNDS' ? 'EBOUNDS' : 'EINVAL', undefined, message);
export const readerFail: Fail = (code, file, message) => new ImageError(code, file, message);

export function checkPstree(tasks: readonly PsTask[], fail: Fail): void {
  const file = imageName.pstree();
  if (tasks.length === 0) throw fail('EDECODE', file, 'has no task');
  if (tasks.length > MAX_TASKS) throw fail('ETOOBIG', file, `${tasks.length} tasks, over the cap of ${MAX_TASKS}`);
  const threads = tasks.reduce((n, t) => n + t.tids.length, 0);
  if (threads > MAX_TREE_THREADS) throw fail('ETOOBIG', file, `${threads} threads in the tree, over the cap of ${MAX_TREE_THREADS}`);
  const index = new Map<number, number>();
  const tidOwner = new Map<number, number>();
  tasks.forEach((t, i) => {
    const who = `task ${t.pid}`;
    if (t.pid === 0) throw fail('EDECODE', file, `entry ${i} has pid 0`);
    if (index.has(t.pid)) throw fail('EDECODE', file, `${who} is listed twice`);
    for (const tid of t.tids) {
      const other = tidOwner.get(tid);
      if (other !== undefined && other !== t.pid) throw fail('EDECODE', file, `${who} lists thread ${tid}, which is a thread of task ${other} too`);
      tidOwner.set(tid, t.pid);
    }
    if (i === 0) {
      index.set(t.pid, i);
      return;
    }
    if (t.ppid === 0) throw fail('EDECODE', file, `${who} has ppid 0: a second root (the root task is the first entry)`);
    const parent = index.get(t.ppid);
    if (parent === undefined) {
      const later = tasks.findIndex((o) => o.pid === t.ppid);
      throw fail('EDECODE', file, later >= 0
        ? `${who} comes before its parent ${t.ppid} (each parent must come before its children)`
        : `${who} has parent ${t.ppid}, which is not in the tree`);
    }
    index.set(t.pid, i);
  });
  // Tids of other tasks' threads must not be pids of tasks either (checked above for listed tids, and
  // every task lists its main thread).
  const sidOfGroup = new Map<number, number>();
  tasks.forEach((t, i) => {
    const who = `task ${t.pid}`;
    if (t.sid === t.pid && t.pgid !== t.pid) throw fail('EDECODE', file, `${who} leads session ${t.sid} but is in process group ${t.pgid}, not its own`);
    const groupSid = sidOfGroup.get(t.pgid);
    if (groupSid !== undefined && groupSid !== t.sid) {
      throw fail('EDECODE', file, `${who} is in process group ${t.pgid} of session ${t.sid}, but another member of the group is in session ${groupSid}`);
    }
    sidOfGroup.set(t.pgid, t.sid);
    const leader = index.get(t.sid);
    if (leader !== undefined && tasks[leader].sid !== t.sid) {
      throw fail('EDECODE', file, `${who} is in session ${t.sid}, but task ${t.sid} is in session ${tasks[leader].sid}, not leading its own`);
    }
    if (i > 0 && t.sid !== t.pid) {
      const parent = tasks[index.get(t.ppid) as number];
      if (parent.sid !== t.sid) {
        throw fail('EDECODE', file, `${who} is in session ${t.sid} but its parent ${parent.pid} is in session ${parent.sid}: a child is in its parent's session unless it leads its own`);
      }
    }
  });
}

export function psTaskOf(task: DumpedTask): PsTask {
  return { pid: task.pid, ppid: task.ppid, pgid: task.pgid, sid: task.sid, tids: [task.pid, ...task.threads.map((t) => t.tid)] };
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * The shmem rules across the tree. `parentOf(i)` is the index of task i's parent (-1 for the root).
 */
export function checkShmem(tasks: readonly DumpedTask[], parentOf: (i: number) => number, fail: Fail): void {
  const objects = new Map<number, { size: number; path: string | undefined; owner: number }>();
  tasks.forEach((task, i) => {
    const mm = imageName.mm(task.pid);
    const seenHere = new Set<number>();
    task.vmas.forEach((v, vi) => {
      if (v.kind !== 'shmem' || v.shmid === undefined) return;
      const what = `task ${task.pid}: VMA ${vi} (${hex(v.start)}-${hex(v.end)} ${v.path ?? v.name})`;
      const obj = objects.get(v.shmid);
      if (obj === undefined) {
        seenHere.add(v.shmid);
        return;
      }
      if (obj.size !== v.shmSize || obj.path !== v.path) {
        throw fail('EDECODE', mm, `${what} maps shmem object ${v.shmid} as ${v.path} of ${v.shmSize} bytes, but task ${tasks[obj.owner].pid} maps it as ${obj.path} of ${obj.size} bytes`);
      }
      if (obj.owner === i) return;
      const pages = task.pages.find((r) => r.vaddr < v.end && r.vaddr + r.nrPages * PAGE_SIZE > v.start);
      if (pages !== undefined) {
        throw fail('EBOUNDS', imageName.pagemap(task.pid), `${what}: pages of shmem object ${v.shmid} are dumped by task ${tasks[obj.owner].pid} already (run ${hex(pages.vaddr)})`);
      }
      const p = parentOf(i);
      const inheritedFrom = p >= 0 && tasks[p].vmas.some((pv) => pv.kind === 'shmem' && pv.shmid === v.shmid && pv.start === v.start && pv.end === v.end && pv.pgoff === v.pgoff);
      if (!inheritedFrom) {
        throw fail('EDECODE', mm, `${what} maps shmem object ${v.shmid}, dumped by task ${tasks[obj.owner].pid}, but did not inherit the mapping from its parent (same range and offset): it could not be shared again on restore`);
      }
    });
    task.vmas.forEach((v) => {
      if (v.kind === 'shmem' && v.shmid !== undefined && seenHere.has(v.shmid) && !objects.has(v.shmid)) {
        objects.set(v.shmid, { size: v.shmSize ?? 0, path: v.path, owner: i });
      }
    });
    // The owner's own VMAs of one object must agree with each other too.
    task.vmas.forEach((v, vi) => {
      if (v.kind !== 'shmem' || v.shmid === undefined) return;
      const obj = objects.get(v.shmid);
      if (obj !== undefined && obj.owner === i && (obj.size !== (v.shmSize ?? 0) || obj.path !== v.path)) {
        throw fail('EDECODE', mm, `task ${task.pid}: VMA ${vi} (${hex(v.start)}-${hex(v.end)}) maps shmem object ${v.shmid} as ${v.path} of ${v.shmSize} bytes, another of its VMAs as ${obj.path} of ${obj.size} bytes`);
      }
    });
  });
}

/** Index of each task's parent in the tree (-1 for the root), tasks already checked by checkPstree. */
export function parentIndexes(tasks: readonly { pid: number; ppid: number }[]): number[] {
  const index = new Map<number, number>();
  return tasks.map((t, i) => {
    const p = i === 0 ? -1 : index.get(t.ppid) ?? -1;
    index.set(t.pid, i);
    return p;
  });
}

/** The writer's checks of DumpedTree.pipes against the fds of its tasks. */
export function checkPipeList(tree: DumpedTree): void {
  const held = new Set<number>();
  for (const t of tree.tasks) for (const f of t.files) if (f.kind === 'pipe' && f.pipe !== undefined) held.add(f.pipe.id);
  const seen = new Set<number>();
  tree.pipes.forEach((p, i) => {
    if (seen.has(p.id)) throw new ImageError('EINVAL', undefined, `pipes[${i}]: pipe ${p.id} is listed twice`);
    seen.add(p.id);
    if (!held.has(p.id)) throw new ImageError('EINVAL', undefined, `pipes[${i}]: pipe ${p.id} is held by no fd of the tree`);
  });
}

/** The VMAs of task i's parent, or null for the root. */
export function parentVmas(tasks: readonly DumpedTask[], parents: readonly number[], i: number): readonly Vma[] | null {
  return parents[i] < 0 ? null : tasks[parents[i]].vmas;
}
