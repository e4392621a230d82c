/**
 * The file kinds of images/files/ and external pipes: written into files.img as CRIU's file_entry
 * fields (crit decodes them and shows our values there), read back exactly, and bad state refused.
 */

import { execFile } from 'child_process';
import * as path from 'path';
import { promisify } from 'util';
import { DumpedTask, OpenFile } from '../../native/lib/types';
import { encodeTask } from '../encode';
import { readCheckpoint } from '../read';
import { makeTask } from '../test/test-fixture';
import { makeCheckpoint, removeDir } from '../test/test-dir';

const run = promisify(execFile);

async function critText(file: string): Promise<string> {
  return (await run('/usr/bin/python3', ['/usr/bin/crit', 'decode', '-i', file], { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

async function critDecode(file: string): Promise<Array<Record<string, any>>> {
  return (JSON.parse(await critText(file)) as { entries: Array<Record<string, any>> }).entries;
}

const O_RDWR = 0o2;
const O_WRONLY = 0o1;
const O_NONBLOCK = 0o4000;
const EPOLLIN = 0x1;
const EPOLLONESHOT = 1 << 30;
const EPOLLET = 0x8000_0000;

/** A task with every kind of images/files/ and an external stdout pipe. */
function taskWithKinds(): DumpedTask {
  const task = makeTask();
  const files: OpenFile[] = [
    { fd: 1, kind: 'pipe', path: 'pipe:[777]', flags: O_WRONLY, cloexec: false, pos: 0, size: 0, mode: 0o10600, pipe: { id: 777, write: true }, state: { num: { external: 1 }, text: {} } },
    { fd: 10, kind: 'eventfd', path: 'anon_inode:[eventfd]', flags: O_RDWR | O_NONBLOCK, cloexec: true, pos: 0, size: 0, mode: 0, state: { num: { counter: 0x1_0000_0005, semaphore: 0 }, text: {} } },
    { fd: 11, kind: 'eventfd', path: 'anon_inode:[eventfd]', flags: O_RDWR, cloexec: false, pos: 0, size: 0, mode: 0, state: { num: { counter: 0xffff_ffff_ffff_fffen, semaphore: 1 }, text: {} } },
    {
      fd: 12, kind: 'epoll', path: 'anon_inode:[eventpoll]', flags: O_RDWR, cloexec: true, pos: 0, size: 0, mode: 0,
      state: { num: {}, text: {}, items: [
        { num: { tfd: 10, events: EPOLLIN + EPOLLET, data: 0xdeadbeefcafe1234n }, text: {} },
        { num: { tfd: 11, events: EPOLLIN | EPOLLONESHOT, data: 9 }, text: {} },
      ] },
    },
    {
      fd: 13, kind: 'timerfd', path: 'anon_inode:[timerfd]', flags: O_RDWR, cloexec: false, pos: 0, size: 0, mode: 0,
      state: { num: { clockid: 1, ticks: 3, settime_flags: 1, value_sec: 3599, value_nsec: 999_000_000, interval_sec: 0, interval_nsec: 50_000_000 }, text: {} },
    },
    {
      fd: 15, kind: 'memfd', path: '/memfd:cache (deleted)', flags: O_RDWR, cloexec: true, pos: 3, size: 5, mode: 0o100777,
      state: { num: { seals: 0xf }, text: { name: 'cache' }, data: Buffer.from('hello') },
    },
    {
      fd: 16, kind: 'fifo', path: '/run/app/ctl.fifo', flags: O_RDWR | O_NONBLOCK, cloexec: false, pos: 0, size: 0, mode: 0o10600,
      state: { num: { dev: 0xfe00, ino: 0x1_2345_6789 }, text: {}, data: Buffer.from('queued') },
    },
    {
      fd: 17, kind: 'ghost', path: '/var/lib/app/tmp.db (deleted)', flags: O_RDWR, cloexec: false, pos: 2, size: 4, mode: 0o100640,
      state: { num: {}, text: {}, data: Buffer.from('gone') },
    },
    {
      fd: 18, kind: 'inotify', path: 'anon_inode:inotify', flags: O_RDWR, cloexec: false, pos: 0, size: 0, mode: 0,
      state: { num: {}, text: {}, items: [{ num: { wd: 1, mask: 0x300 }, text: { path: '/etc' } }, { num: { wd: 3, mask: 0x2 }, text: { path: '/etc/hosts' } }] },
    },
    { fd: 14, kind: 'signalfd', path: 'anon_inode:[signalfd]', flags: O_RDWR | O_NONBLOCK, cloexec: false, pos: 0, size: 0, mode: 0, state: { num: { sigmask: 0x8000_0000_0000_0600n }, text: {} } },
  ];
  task.files = [...task.files.filter((f) => f.fd !== 1), ...files].sort((a, b) => a.fd - b.fd);
  const reg = task.files.find((f) => f.kind === 'reg')!;
  reg.state = { num: {}, text: {}, items: [
    { num: { lock: 0, write: 1, start: 0, len: 0 }, text: {} },
    { num: { lock: 1, write: 0, start: 10, len: 20 }, text: {} },
    { num: { lock: 2, write: 1, start: 0x1_0000_0000, len: 0 }, text: {} },
  ] };
  return task;
}

describe('file kinds in the images', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await removeDir(dir);
    dir = '';
  });

  it('crit decodes eventfds (EVENTFD efd), the epoll with its tfd entries (EVENTPOLL epfd), timerfd, signalfd, memfd, FIFO, inotify and the external pipe (PIPE)', async () => {
    dir = (await makeCheckpoint(taskWithKinds())).dir;
    const entries = await critDecode(path.join(dir, 'files.img'));
    const efds = entries.filter((e) => e.type === 'EVENTFD').map((e) => e.efd);
    expect(efds.map((e) => [e.flags, e.counter])).toEqual([[O_RDWR | O_NONBLOCK, 0x1_0000_0005], [O_RDWR, 18446744073709551614]]);
    const pipe = entries.find((e) => e.type === 'PIPE');
    expect(pipe?.pipe.pipe_id).toBe(777);
    const epoll = entries.find((e) => e.type === 'EVENTPOLL');
    expect(epoll?.epfd.tfd.map((t: Record<string, unknown>) => [t.tfd, t.events])).toEqual([[10, EPOLLIN + EPOLLET], [11, EPOLLIN | EPOLLONESHOT]]);
    // JSON.parse rounds 64-bit numbers: the exact data as crit printed it.
    expect(await critText(path.join(dir, 'files.img'))).toContain(`"data": ${0xdeadbeefcafe1234n}`);
    const timer = entries.find((e) => e.type === 'TIMERFD')?.tfd;
    expect(timer).toMatchObject({ clockid: 1, ticks: 3, settime_flags: 1, vsec: 3599, vnsec: 999_000_000, isec: 0, insec: 50_000_000 });
    expect(await critText(path.join(dir, 'files.img'))).toContain(`"sigmask": ${0x8000_0000_0000_0600n}`);
    expect(entries.find((e) => e.type === 'MEMFD')?.memfd).toMatchObject({ flags: O_RDWR, pos: 3, inode_id: expect.any(Number) });
    expect(entries.find((e) => e.type === 'FIFO')?.fifo).toMatchObject({ pipe_id: 0x2345_6789 });
    const ify = entries.find((e) => e.type === 'INOTIFY')?.ify;
    expect(ify.wd.map((w: Record<string, any>) => [w.wd, w.mask, w.f_handle.path])).toEqual([[1, 0x300, '/etc'], [3, 0x2, '/etc/hosts']]);
    const fdinfo = await critDecode(path.join(dir, 'fdinfo-1.img'));
    expect(fdinfo.filter((e) => e.type === 'EVENTFD').map((e) => e.fd)).toEqual([10, 11]);
  });

  it('reads every kind back exactly (64-bit counters as bigints above 2^53, file locks of a regular file)', async () => {
    const task = taskWithKinds();
    dir = (await makeCheckpoint(task)).dir;
    const back = (await readCheckpoint(dir)).task;
    expect(back.files).toEqual(task.files);
  });

  it('refuses a memfd over the cap, or without its name', () => {
    const big = taskWithKinds();
    big.files.find((f) => f.fd === 15)!.state!.data = Buffer.alloc(8 * 1024 * 1024 + 1);
    expect(() => encodeTask(big)).toThrow(/fd 15.*8388609 bytes, over the cap of 8388608/);
    const nameless = taskWithKinds();
    nameless.files.find((f) => f.fd === 15)!.state!.text = {};
    expect(() => encodeTask(nameless)).toThrow(/fd 15.*needs its name/);
  });

  it('refuses a timerfd with a nanosecond field of a second or more', () => {
    const task = taskWithKinds();
    task.files.find((f) => f.fd === 13)!.state!.num.value_nsec = 1_000_000_000;
    expect(() => encodeTask(task)).toThrow(/fd 13.*nanosecond/);
  });

  it('refuses an eventfd without its counter, and one at the maximum', () => {
    const task = taskWithKinds();
    task.files.find((f) => f.fd === 10)!.state = { num: { semaphore: 0 }, text: {} };
    expect(() => encodeTask(task)).toThrow(/fd 10.*no state\.num\.counter/);
    const max = taskWithKinds();
    max.files.find((f) => f.fd === 11)!.state!.num.counter = 0xffff_ffff_ffff_ffffn;
    expect(() => encodeTask(max)).toThrow(/above the maximum/);
  });
});
