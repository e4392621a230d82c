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
import { makeTask } from '../test-fixture';
import { makeCheckpoint, removeDir } from '../test-dir';

const run = promisify(execFile);

async function critDecode(file: string): Promise<Array<Record<string, any>>> {
  const { stdout } = await run('/usr/bin/python3', ['/usr/bin/crit', 'decode', '-i', file], { maxBuffer: 16 * 1024 * 1024 });
  return (JSON.parse(stdout) as { entries: Array<Record<string, any>> }).entries;
}

const O_RDWR = 0o2;
const O_WRONLY = 0o1;
const O_NONBLOCK = 0o4000;

/** A task with every kind of images/files/ and an external stdout pipe. */
function taskWithKinds(): DumpedTask {
  const task = makeTask();
  const files: OpenFile[] = [
    { fd: 1, kind: 'pipe', path: 'pipe:[777]', flags: O_WRONLY, cloexec: false, pos: 0, size: 0, mode: 0o10600, pipe: { id: 777, write: true }, state: { num: { external: 1 }, text: {} } },
    { fd: 10, kind: 'eventfd', path: 'anon_inode:[eventfd]', flags: O_RDWR | O_NONBLOCK, cloexec: true, pos: 0, size: 0, mode: 0, state: { num: { counter: 0x1_0000_0005, semaphore: 0 }, text: {} } },
    { fd: 11, kind: 'eventfd', path: 'anon_inode:[eventfd]', flags: O_RDWR, cloexec: false, pos: 0, size: 0, mode: 0, state: { num: { counter: 0xffff_ffff_ffff_fffen, semaphore: 1 }, text: {} } },
  ];
  task.files = [...task.files.filter((f) => f.fd !== 1), ...files].sort((a, b) => a.fd - b.fd);
  return task;
}

describe('file kinds in the images', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await removeDir(dir);
    dir = '';
  });

  it('crit decodes eventfds as EVENTFD efd entries and the external pipe as a PIPE entry', async () => {
    dir = (await makeCheckpoint(taskWithKinds())).dir;
    const entries = await critDecode(path.join(dir, 'files.img'));
    const efds = entries.filter((e) => e.type === 'EVENTFD').map((e) => e.efd);
    expect(efds.map((e) => [e.flags, e.counter])).toEqual([[O_RDWR | O_NONBLOCK, 0x1_0000_0005], [O_RDWR, 18446744073709551614]]);
    const pipe = entries.find((e) => e.type === 'PIPE');
    expect(pipe?.pipe.pipe_id).toBe(777);
    const fdinfo = await critDecode(path.join(dir, 'fdinfo-1.img'));
    expect(fdinfo.filter((e) => e.type === 'EVENTFD').map((e) => e.fd)).toEqual([10, 11]);
  });

  it('reads every kind back exactly (64-bit counters as bigints above 2^53)', async () => {
    const task = taskWithKinds();
    dir = (await makeCheckpoint(task)).dir;
    const back = (await readCheckpoint(dir)).task;
    expect(back.files).toEqual(task.files);
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
