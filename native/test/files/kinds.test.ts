/**
 * One victim per kind of fd of the file layer (native/src/core/files/<kind>.cc, images/files/<kind>.ts):
 * dumped, killed, restored, and then checking its own fds' state (victims in native/test/files).
 */
import { dumpProcess, restoreProcess } from '../../../checkpoint';
import { assertRunningUntraced, cleanup, dumpRestoreCheck, expectFailure, makeTempDir, readFds, readProgress, requestCheck, waitForProgress } from '../harness';
import { startFilesVictim } from './harness';

jest.setTimeout(60_000);

/** fd → what it is, with pipe inodes left out (a restored pipe is a new one). */
function fdKinds(pid: number): Map<number, string> {
  return new Map([...readFds(pid)].map(([fd, link]) => [fd, link.replace(/^pipe:\[\d+\]$/, 'pipe')]));
}
afterEach(cleanup);

test('eventfd: a 33-bit counter and a semaphore with 3 come back with their values and flags', async () => {
  const v = await startFilesVictim('eventfd-holder');
  const fds = readFds(v.pid);
  const { restored, result } = await dumpRestoreCheck(v, {
    beforeCheck: (r) => expect(readFds(r.pid)).toEqual(fds),
  });
  expect(restored.pid).toBeGreaterThan(0);
  expect(result).toBe('PASS');
});

test('epoll: targets with their masks (EPOLLET, EPOLLONESHOT) and 64-bit data, and an epoll in an epoll, still report right', async () => {
  const v = await startFilesVictim('epoll-holder');
  const fds = fdKinds(v.pid);
  const { result } = await dumpRestoreCheck(v, { beforeCheck: (r) => expect(fdKinds(r.pid)).toEqual(fds) });
  expect(result).toBe('PASS');
});

test.each([
  ['epoll-closed-target', /fd 3 \(anon_inode:\[eventpoll\]\): target fd 4 was closed .* but is still registered/],
  ['epoll-dup-target', /fd 3 \(anon_inode:\[eventpoll\]\): targets fd 4 and fd 5 are duplicates of one open file/],
  ['inotify-queued', /fd 3 \(anon_inode:inotify\): \d+ bytes of events are queued unread: they cannot be put into a new inotify instance/],
])('%s: refused before anything is stopped, naming the object and why', async (name, why) => {
  const v = await startFilesVictim(name);
  const dir = makeTempDir(`img-${name}`);
  await expectFailure(dumpProcess({ pid: v.pid, dir }), 'EUNSUPPORTED', [why]);
  assertRunningUntraced(v.pid, `${name} after the refused dump`);
  await waitForProgress(v.workdir, readProgress(v.workdir) ?? 0, `${name} after the refused dump`, 2);
  expect(await requestCheck(v.workdir)).toBe('PASS');
});

test('timerfd: an unread expiration, relative and absolute 1-hour timers and a periodic one come back on schedule', async () => {
  const v = await startFilesVictim('timerfd-holder');
  const { result } = await dumpRestoreCheck(v);
  expect(result).toBe('PASS');
});

test('signalfd: its mask comes back and a SIGUSR1 sent after restore is read from it', async () => {
  const v = await startFilesVictim('signalfd-holder');
  const { result } = await dumpRestoreCheck(v);
  expect(result).toBe('PASS');
});

test('memfd: names, sizes, offsets, seals and contents come back; the sealed one still refuses writes', async () => {
  const v = await startFilesVictim('memfd-holder');
  const fds = fdKinds(v.pid);
  const { result } = await dumpRestoreCheck(v, { beforeCheck: (r) => expect(fdKinds(r.pid)).toEqual(fds) });
  expect(result).toBe('PASS');
});

test('a memfd over the 8 MiB cap: refused before anything is stopped, naming it and the cap', async () => {
  const v = await startFilesVictim('memfd-big');
  const dir = makeTempDir('img-memfd-big');
  await expectFailure(dumpProcess({ pid: v.pid, dir }), 'EUNSUPPORTED', [/fd 3/, /cryopod-big/, /9437184 bytes, over the cap of 8388608/]);
  assertRunningUntraced(v.pid, 'memfd-big after the refused dump');
  expect(await requestCheck(v.workdir)).toBe('PASS');
});

test('file locks: flock, a POSIX range lock and an OFD lock are held again after restore', async () => {
  const v = await startFilesVictim('locks-holder');
  const { result } = await dumpRestoreCheck(v);
  expect(result).toBe('PASS');
});

test('file locks still held by the original (a leave-running dump): the restore fails with ELOCKED naming the file', async () => {
  const v = await startFilesVictim('locks-holder');
  const dir = makeTempDir('img-locks');
  await dumpProcess({ pid: v.pid, dir, leaveRunning: true });
  await expectFailure(restoreProcess({ dir }), 'ELOCKED', [/fd 3/, /flock/, /still running/]);
  expect(await requestCheck(v.workdir)).toBe('PASS');
});

test('FIFO: both ends reopened by path, the bytes it held there once, still non-blocking', async () => {
  const v = await startFilesVictim('fifo-holder');
  const fds = fdKinds(v.pid);
  const { result } = await dumpRestoreCheck(v, { beforeCheck: (r) => expect(fdKinds(r.pid)).toEqual(fds) });
  expect(result).toBe('PASS');
});

test('deleted files held open: contents, size, mode, offset and access mode come back in ghosts, deleted again', async () => {
  const v = await startFilesVictim('ghost-holder');
  const fds = fdKinds(v.pid);
  const { result } = await dumpRestoreCheck(v, { beforeCheck: (r) => expect(fdKinds(r.pid)).toEqual(fds) });
  expect(result).toBe('PASS');
});

test('inotify: every watch comes back with its wd (a gap included), mask and path, and reports writes made after restore', async () => {
  const v = await startFilesVictim('inotify-holder');
  const { result } = await dumpRestoreCheck(v);
  expect(result).toBe('PASS');
});
