/**
 * Processes that live in a PID namespace of their own (as in a container): dumped with the IDs they see
 * there, restored as a new namespace's init with every task and thread at its saved ID, and checked by
 * their own verdicts. The restorer lives in the host's namespace, as the node agent does.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { dumpProcess, restoreProcess } from '../../../checkpoint';
import { readCheckpoint } from '../../../images';
import { restoreTree, STUB_PATH } from '../../lib';
import { buildVictims, cleanup, makeTempDir, readProgress, requestCheck, trackPid, victimPath, waitFor, waitForProgress, waitGone } from '../harness';
import { CLEAN_EXEC, hostPidOf, namespaceOf, nsPids, readyLine, startInNamespace } from '../namespaces';

const TREE_BIN = path.join(__dirname, 'bin');

jest.setTimeout(120_000);

const pidNamespace = (pid: number): string => namespaceOf(pid, 'pid');

function children(pid: number): number[] {
  return fs
    .readdirSync(`/proc/${pid}/task`)
    .flatMap((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/))
    .filter((s) => s !== '')
    .map(Number);
}

beforeAll(() => {
  buildVictims();
  execFileSync('make', ['-s', '-C', __dirname], { stdio: ['ignore', 'inherit', 'inherit'] });
});
afterEach(cleanup);

test('a pipe chain that is its own PID namespace comes back as a new namespace with IDs 1, 2 and 3', async () => {
  const v = await startInNamespace(path.join(TREE_BIN, 'tree-pipe'), []);
  expect(v.ready).toBe('1 2 3'); // the IDs the tree sees
  const hostIds = [v.pid, ...children(v.pid)];
  hostIds.push(...children(hostIds[1]));
  expect(hostIds.map((p) => nsPids(p)[1])).toEqual([1, 2, 3]);
  const images = makeTempDir('pidns-img');
  const s = await dumpProcess({ pid: v.pid, dir: images });
  expect(s.tasks).toBe(3);
  const { tree } = await readCheckpoint(images);
  expect(tree.tasks.map((t) => [t.pid, t.ppid, t.ownPidNamespace])).toEqual([[1, 0, true], [2, 1, true], [3, 2, true]]);
  for (const p of hostIds) await waitGone(p, `dumped task ${p}`);

  const r = await restoreProcess({ dir: images });
  trackPid(r.pid);
  expect(pidNamespace(r.pid)).not.toBe(pidNamespace(process.pid));
  expect(nsPids(r.pid)).toEqual([r.pid, 1]);
  const [child] = children(r.pid);
  const [grandchild] = children(child);
  expect(nsPids(child)).toEqual([child, 2]);
  expect(nsPids(grandchild)).toEqual([grandchild, 3]);
  expect(pidNamespace(grandchild)).toBe(pidNamespace(r.pid));
  // The tree's own check: the sequence through both pipes goes on, parents and groups as they were.
  expect(await requestCheck(v.workdir)).toBe('PASS');
});

test('a multi-threaded process that is its own PID namespace keeps its thread IDs there', async () => {
  const v = await startInNamespace(victimPath('multithread'), []);
  expect(v.ready).toBe('1');
  const tids = () => fs.readdirSync(`/proc/${v.pid}/task`).map(Number);
  await waitFor(() => (tids().length === 2 ? true : undefined), 10_000, 'the second thread');
  const savedNsTids = tids().map((t) => nsPids(v.pid, t)[1]).sort((a, b) => a - b);
  const images = makeTempDir('pidns-mt-img');
  await dumpProcess({ pid: v.pid, dir: images });
  await waitGone(v.pid, 'the dumped victim');

  const r = await restoreProcess({ dir: images });
  trackPid(r.pid);
  const now = fs.readdirSync(`/proc/${r.pid}/task`).map(Number);
  expect(now.map((t) => nsPids(r.pid, t)[1]).sort((a, b) => a - b)).toEqual(savedNsTids);
  expect(await requestCheck(v.workdir)).toBe('PASS');
});

test('a process of a namespace that is not its init comes back in ours with a new PID when it is single-threaded', async () => {
  // The init is a shell that starts the sleeper victim and waits: the victim is PID 2 there.
  const workdir = makeTempDir('pidns-sub');
  execFileSync('setsid', ['-f', 'unshare', '--pid', '--fork', '/bin/sh', '-c', `"$0" "$1"; sleep 600`, victimPath('sleeper'), workdir], { stdio: 'ignore', cwd: '/' });
  await readyLine(workdir, 'the sleeper');
  const pid = await waitFor(() => hostPidOf(workdir, 2), 10_000, 'the sleeper host PID');
  const init = await waitFor(() => hostPidOf(workdir, 1), 10_000, 'the shell host PID');
  trackPid(pid);
  trackPid(init);
  const images = makeTempDir('pidns-sub-img');
  await dumpProcess({ pid, dir: images });
  const { task } = await readCheckpoint(images);
  expect([task.pid, task.ppid, task.ownPidNamespace]).toEqual([2, 1, true]);
  await waitGone(pid, 'the dumped sleeper');
  const r = await restoreProcess({ dir: images });
  trackPid(r.pid);
  expect(pidNamespace(r.pid)).toBe(pidNamespace(process.pid));
  await waitForProgress(workdir, readProgress(workdir) ?? 0, 'the restored sleeper', 2);
  expect(await requestCheck(workdir)).toBe('PASS');
});

test('a tree from a PID namespace whose init it does not hold is refused (EPIDNS) before any process is made', async () => {
  const v = await startInNamespace(path.join(TREE_BIN, 'tree-pipe'), []);
  const images = makeTempDir('pidns-epidns-img');
  await dumpProcess({ pid: v.pid, dir: images, leaveRunning: true });
  const { tree, pagesPaths } = await readCheckpoint(images);
  // The same tree as if its init (and so every ID) had been one higher: a subtree of someone's namespace.
  const shift = (id: number): number => (id === 0 ? 0 : id + 1);
  const moved = {
    ...tree,
    tasks: tree.tasks.map((t) => ({ ...t, pid: shift(t.pid), ppid: shift(t.ppid), pgid: shift(t.pgid), sid: shift(t.sid) })),
  };
  const before = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).length;
  await expect(restoreTree({ tree: moved, pagesPaths })).rejects.toMatchObject({ code: 'EPIDNS' });
  expect(fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).length).toBeLessThanOrEqual(before + 2);
  // The original, left running, is untouched and passes its own check.
  expect(await requestCheck(v.workdir)).toBe('PASS');
});

test('as in a restore pod: a tree with a SysV segment, in PID and IPC namespaces of its own, is morphed into a stub that is PID 1 of others, with its IDs and shmid', async () => {
  // The victim's namespace made one segment before it (ipcmk): its shmid is not the first a new
  // namespace hands out, so only a restore that sets shm_next_id in the stub's namespace gets it back.
  const workdir = makeTempDir('pidns-ipc');
  const script = `ipcmk -M 4096 >/dev/null && exec "$@"`;
  execFileSync('setsid', ['-f', 'unshare', '--ipc', '--pid', '--fork', '/bin/sh', '-c', script, 'sh', ...CLEAN_EXEC, path.join(TREE_BIN, 'sysv-shm'), workdir], { stdio: 'ignore', cwd: '/' });
  const ready = await readyLine(workdir, 'sysv-shm');
  const [nsParent, nsChild, shmid] = ready.split(' ').map(Number);
  expect(nsParent).toBe(1);
  expect(shmid).toBeGreaterThan(0);
  const pid = await waitFor(() => hostPidOf(workdir, 1), 10_000, 'the sysv-shm host PID');
  trackPid(pid);
  const images = makeTempDir('pidns-ipc-img');
  await dumpProcess({ pid, dir: images });
  await waitGone(pid, 'the dumped sysv-shm');

  // The "restore pod's container": the stub as the init of new PID and IPC namespaces, alone.
  execFileSync('setsid', ['-f', 'unshare', '--ipc', '--pid', '--fork', STUB_PATH, workdir], { stdio: 'ignore', cwd: '/' });
  const stub = await waitFor(() => hostPidOf(workdir, 1), 10_000, 'the stub');
  trackPid(stub);
  expect(fs.readlinkSync(`/proc/${stub}/exe`)).toMatch(/cryopod-stub$/);
  expect(fs.readlinkSync(`/proc/${stub}/ns/ipc`)).not.toBe(fs.readlinkSync('/proc/self/ns/ipc'));
  const { tree, pagesPaths } = await readCheckpoint(images);
  expect(await restoreTree({ tree, pagesPaths, stubPid: stub })).toBe(stub);
  const [child] = children(stub);
  expect(nsPids(child)[1]).toBe(nsChild);
  expect(fs.readlinkSync(`/proc/${child}/ns/ipc`)).toBe(fs.readlinkSync(`/proc/${stub}/ns/ipc`));
  // Its own check: both still see each other's counter, and IPC_STAT on the saved shmid finds the segment.
  expect(await requestCheck(workdir)).toBe('PASS');
});
