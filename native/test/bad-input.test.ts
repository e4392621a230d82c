/**
 * Bad input gives a clear error, with the right code, and harms nothing.
 *
 * Dump: a missing pid (ESRCH), a zombie (EZOMBIE), a read-only dir (EROFS/EACCES), a missing dir (ENOENT),
 * a process holding an io_uring (EUNSUPPORTED, naming the fd), an image name planted in the directory (a symlink
 * or a 0666 file: EEXIST before anything is stopped; planted later, the O_EXCL create refuses it). (Multi-threaded processes and shared anonymous memory are dumped: victims.test.ts.) After each failed dump
 * of a live victim: it is still running, not frozen or stopped, not traced (every thread), it makes
 * progress, and its own check passes.
 *
 * Restore: a missing dir (ENOENT), a truncated pages-1.img (ECHECKSUM: the manifest catches it), a bad
 * magic in core-<pid>.img with the manifest re-hashed (EMAGIC), pages-1.img cut short with the manifest
 * re-hashed so the pagemap points past its end (EBOUNDS), an image listed in the manifest but missing
 * (ECHECKSUM), no manifest at all (EMISSING), a multi-threaded checkpoint whose PID is taken (EPIDTAKEN),
 * and, through the native core directly, a pages image that is not there (ENOENT). A native error names
 * its operation and path as fields (.op, .path), not only in the message.
 * After each: no stub and no new child process is left.
 */
import { execFileSync, spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { dumpProcess, restoreProcess } from '../../checkpoint';
import { readCheckpoint } from '../../images';
import { dumpTask, restoreTask } from '../lib';
import { filesVictim } from './files/harness';
import {
  Checkpoint,
  CryopodError,
  PAGE_SIZE,
  Victim,
  assertRunningUntraced,
  checkResult,
  checkpoint,
  childrenOf,
  cleanup,
  expectFailure,
  expectKilledByDump,
  isAlive,
  makeTempDir,
  procState,
  procStatus,
  processesRunning,
  readFileOrUndefined,
  readProgress,
  sleep,
  startProgram,
  startVictim,
  trackMount,
  trackPid,
  victimPath,
  waitFor,
  waitForProgress,
  waitGone,
} from './harness';

jest.setTimeout(60_000);

/** The victim of a failed dump must be unharmed: running free, making progress, passing its check. */
async function expectUnharmed(v: Victim): Promise<void> {
  assertRunningUntraced(v.pid, `${v.name} after the failed dump`);
  await waitForProgress(v.workdir, readProgress(v.workdir) ?? 0, `${v.name} after the failed dump`, 2);
  assertRunningUntraced(v.pid, `${v.name} after the failed dump`);
  expect(await checkResult(v.pid, v.workdir)).toBe('PASS');
  expect(await waitGone(v.pid, v.name)).not.toEqual({ code: 1, signal: null });
}

describe('dump of bad input', () => {
  afterEach(cleanup);

  test('a missing pid: ESRCH', async () => {
    const child = spawn('/bin/true', [], { stdio: 'ignore' });
    const pid = child.pid as number;
    await new Promise((resolve) => child.on('exit', resolve));
    await waitFor(() => !fs.existsSync(`/proc/${pid}`), 5_000, `pid ${pid} to be reaped`);
    await expectFailure(dumpProcess({ pid, dir: makeTempDir('img-missing') }), 'ESRCH', [String(pid)]);
  });

  test('a zombie: EZOMBIE, and the zombie and its parent are left as they were', async () => {
    // sh forks `sleep 0.1` and then becomes `sleep 1000`, which never reaps it: a real zombie.
    const parent = spawn('/bin/sh', ['-c', 'sleep 0.1 & exec sleep 1000'], { stdio: 'ignore', detached: true });
    const ppid = parent.pid as number;
    trackPid(ppid);
    const zombie = await waitFor(
      () => childrenOf(ppid).find((pid) => procState(pid) === 'Z'),
      10_000,
      `a zombie child of pid ${ppid}`,
    );
    expect(procState(zombie)).toBe('Z');
    await expectFailure(dumpProcess({ pid: zombie, dir: makeTempDir('img-zombie') }), 'EZOMBIE', [String(zombie)]);
    expect(procState(zombie)).toBe('Z');
    assertRunningUntraced(ppid, 'the zombie\'s parent');
  });

  test('into a read-only dir (a read-only tmpfs, unwritable even for root): EROFS or EACCES', async () => {
    const dir = makeTempDir('img-ro');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'cryopod-test-ro', dir]);
    trackMount(dir);
    expect(() => fs.writeFileSync(path.join(dir, 'probe'), 'x')).toThrow(/EROFS/);
    const v = await startVictim('sleeper');
    await waitForProgress(v.workdir, 0, 'the sleeper', 1);
    await expectFailure(dumpProcess({ pid: v.pid, dir }), ['EROFS', 'EACCES'], [dir]);
    expect(fs.readdirSync(dir)).toEqual([]);
    await expectUnharmed(v);
  });

  test('into a missing dir: ENOENT', async () => {
    const dir = path.join(makeTempDir('img-parent'), 'does-not-exist');
    const v = await startVictim('sleeper');
    await waitForProgress(v.workdir, 0, 'the sleeper', 1);
    await expectFailure(dumpProcess({ pid: v.pid, dir }), 'ENOENT', [dir]);
    expect(fs.existsSync(dir)).toBe(false);
    await expectUnharmed(v);
  });

  test('a name planted in the image directory (a symlink to a file, a 0666 pages-1.img): EEXIST before the victim is touched, nothing followed or reused', async () => {
    const v = await startVictim('sleeper');
    await waitForProgress(v.workdir, 0, 'the sleeper', 1);
    const outside = path.join(makeTempDir('img-outside'), 'precious');
    fs.writeFileSync(outside, 'keep me');
    for (const [name, plant] of [
      ['pages-1.img', (p: string) => fs.symlinkSync(outside, p)],
      ['pages-1.img', (p: string) => fs.writeFileSync(p, '', { mode: 0o666 })],
      ['core-1.img', (p: string) => fs.symlinkSync(outside, p)],
      ['.cryopod-manifest.json.tmp', (p: string) => fs.symlinkSync(outside, p)],
    ] as const) {
      const dir = makeTempDir('img-planted');
      plant(path.join(dir, name));
      await expectFailure(dumpProcess({ pid: v.pid, dir }), 'EEXIST', [name]);
      expect(fs.readdirSync(dir)).toEqual([name]);
      assertRunningUntraced(v.pid, `the sleeper after a dump into a directory holding ${name}`);
    }
    // Planted after the directory check (the race the check cannot close): the native core creates the
    // pages image with O_EXCL|O_NOFOLLOW, so the dump fails instead of writing memory through the link.
    const raced = path.join(makeTempDir('img-raced'), 'pages-1.img');
    fs.symlinkSync(outside, raced);
    await expectFailure(dumpTask({ pid: v.pid, pagesPath: raced, leaveRunning: true }), 'EEXIST', [raced]);
    expect(fs.readFileSync(outside, 'utf8')).toBe('keep me');
    await expectUnharmed(v);
  });

  test('a process already traced (by strace): EBUSY, and strace keeps it', async () => {
    const v = await startVictim('sleeper');
    await waitForProgress(v.workdir, 0, 'the sleeper', 1);
    const strace = spawn('strace', ['-qq', '-o', '/dev/null', '-p', String(v.pid)], { stdio: 'ignore' });
    trackPid(strace.pid as number);
    await waitFor(() => procStatus(v.pid)?.TracerPid === String(strace.pid), 10_000, `strace to attach to ${v.pid}`);
    await expectFailure(dumpProcess({ pid: v.pid, dir: makeTempDir('img-traced') }), 'EBUSY', [String(strace.pid)]);
    expect(procStatus(v.pid)?.TracerPid).toBe(String(strace.pid));
    expect('ZXtT').not.toContain(procState(v.pid));
    await waitForProgress(v.workdir, readProgress(v.workdir) ?? 0, 'the traced sleeper after the failed dump', 2);
    strace.kill('SIGTERM');
    await waitFor(() => procStatus(v.pid)?.TracerPid === '0', 10_000, 'strace to detach');
    await expectUnharmed(v);
  });

  test('a process holding an io_uring: EUNSUPPORTED naming the fd, refused before it is stopped, nothing written', async () => {
    // (A pipe to a process outside the tree is dumped as external now: files/external-pipe.test.ts.)
    const v = await startProgram('io-uring-holder', filesVictim('io-uring-holder'), []);
    await waitForProgress(v.workdir, 0, 'the io_uring holder', 1);
    const dir = makeTempDir('img-io-uring');
    await expectFailure(dumpProcess({ pid: v.pid, dir }), 'EUNSUPPORTED', [/fd 3/, /io_uring/]);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.img') || f.startsWith('cryopod-'))).toEqual([]);
    await expectUnharmed(v);
  });
});

describe('restore of bad input', () => {
  let good: Checkpoint;
  let workdir: string;

  beforeAll(async () => {
    const v = await startVictim('sleeper');
    await waitForProgress(v.workdir, 0, 'the sleeper', 2);
    good = await checkpoint(v);
    await expectKilledByDump(v);
    workdir = v.workdir;
  }, 60_000);
  afterAll(cleanup);

  /** A copy of the good checkpoint to damage. */
  function copy(): string {
    const dir = makeTempDir('img-bad');
    fs.cpSync(good.dir, dir, { recursive: true });
    return dir;
  }

  /** Re-hashes one file in the manifest, so that only the damage inside the file can be caught. */
  function rehash(dir: string, name: string): void {
    const file = path.join(dir, 'cryopod-manifest.json');
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
    const buf = fs.readFileSync(path.join(dir, name));
    // A whole-file sha256, so any chunked-hash marker (manifest v2) and a v3 blake3 go.
    const fresh = { size: buf.length, sha256: createHash('sha256').update(buf).digest('hex'), chunkBytes: undefined, blake3: undefined };
    if (Array.isArray(manifest.files)) {
      const entry = manifest.files.find((f: { name: string }) => f.name === name);
      if (!entry) throw new Error(`the manifest does not list ${name}`);
      Object.assign(entry, fresh);
    } else {
      if (!manifest.files?.[name]) throw new Error(`the manifest does not list ${name}`);
      Object.assign(manifest.files[name], fresh);
    }
    fs.writeFileSync(file, JSON.stringify(manifest, null, 2));
  }

  /**
   * Restores `dir` (or runs the restore given), expecting `code`; then no stub and no new child of this
   * process may be left.
   */
  async function expectRestoreFailure(
    dir: string | (() => Promise<unknown>),
    code: string,
    mentions: Array<string | RegExp>,
  ): Promise<CryopodError> {
    const childrenBefore = new Set(childrenOf(process.pid));
    const stubsBefore = new Set(processesRunning('cryopod-stub'));
    const err = await expectFailure(typeof dir === 'string' ? restoreProcess({ dir }) : dir(), code, mentions);
    const leftovers = () => [
      ...childrenOf(process.pid).filter((p) => !childrenBefore.has(p)),
      ...processesRunning('cryopod-stub').filter((p) => !stubsBefore.has(p)),
    ];
    await waitFor(() => leftovers().length === 0, 3_000, 'no process left behind by the failed restore').catch(() => {
      const desc = leftovers().map((p) => `${p} (${procState(p)}, ${readFileOrUndefined(`/proc/${p}/cmdline`)?.replace(/\0/g, ' ')})`);
      throw new Error(`the failed restore left processes behind: ${desc.join(', ')}`);
    });
    expect(readFileOrUndefined(path.join(workdir, 'result'))).toBeUndefined();
    return err;
  }

  test('control: an undamaged copy restores (so the failures below come from the damage)', async () => {
    const dir = copy();
    const r = await restoreProcess({ dir });
    trackPid(r.pid);
    expect(isAlive(r.pid)).toBe(true);
    process.kill(r.pid, 'SIGKILL');
    await waitFor(() => !isAlive(r.pid), 5_000, 'the restored control to die');
    await sleep(100);
  });

  test('a missing dir: ENOENT', async () => {
    const dir = path.join(makeTempDir('img-parent'), 'nothing-here');
    await expectRestoreFailure(dir, 'ENOENT', [dir]);
  });

  test('a truncated pages-1.img: ECHECKSUM (the manifest catches it)', async () => {
    const dir = copy();
    const size = fs.statSync(path.join(dir, 'pages-1.img')).size;
    fs.truncateSync(path.join(dir, 'pages-1.img'), size - PAGE_SIZE / 2);
    await expectRestoreFailure(dir, 'ECHECKSUM', ['pages-1.img']);
  });

  test('a flipped byte in pages-1.img: ECHECKSUM', async () => {
    const dir = copy();
    const fd = fs.openSync(path.join(dir, 'pages-1.img'), 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, 100);
    b[0] ^= 0xff;
    fs.writeSync(fd, b, 0, 1, 100);
    fs.closeSync(fd);
    await expectRestoreFailure(dir, 'ECHECKSUM', ['pages-1.img']);
  });

  test('a bad magic in core-<pid>.img, manifest re-hashed: EMAGIC', async () => {
    const dir = copy();
    const core = `core-${good.pid}.img`;
    const fd = fs.openSync(path.join(dir, core), 'r+');
    fs.writeSync(fd, Buffer.from([0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5]), 0, 8, 0);
    fs.closeSync(fd);
    rehash(dir, core);
    await expectRestoreFailure(dir, 'EMAGIC', [core]);
  });

  test('a pagemap pointing past the end of pages-1.img (cut short, manifest re-hashed): EBOUNDS', async () => {
    const dir = copy();
    const pages = fs.statSync(path.join(dir, 'pages-1.img')).size / PAGE_SIZE;
    expect(pages).toBeGreaterThanOrEqual(1);
    fs.truncateSync(path.join(dir, 'pages-1.img'), Math.floor(pages / 2) * PAGE_SIZE);
    rehash(dir, 'pages-1.img');
    await expectRestoreFailure(dir, 'EBOUNDS', [/pages-1\.img|pagemap/]);
  });

  test('the native restore of a pages image that is not there: ENOENT naming op open and the path', async () => {
    const { task } = await readCheckpoint(good.dir);
    const missing = path.join(makeTempDir('img-parent'), 'gone', 'pages-1.img');
    const err = await expectRestoreFailure(() => restoreTask({ task, pagesPath: missing }), 'ENOENT', [missing]);
    expect(err.op).toBe('open');
    expect(err.path).toBe(missing);
    expect(err.errno).toBe(2);
    expect(err.message).toBe(`open ${missing}: No such file or directory`);
  });

  test('an image listed in the manifest but missing: ECHECKSUM', async () => {
    const dir = copy();
    fs.rmSync(path.join(dir, `mm-${good.pid}.img`));
    await expectRestoreFailure(dir, 'ECHECKSUM', [`mm-${good.pid}.img`]);
  });

  test('a multi-threaded checkpoint whose PID is still in use: EPIDTAKEN, the running original untouched', async () => {
    const v = await startVictim('multithread');
    await waitForProgress(v.workdir, 0, 'the multithread victim', 2);
    const cp = await checkpoint(v, { leaveRunning: true });
    await expectRestoreFailure(cp.dir, 'EPIDTAKEN', [String(v.pid)]);
    assertRunningUntraced(v.pid, 'the original multithread victim');
    await waitForProgress(v.workdir, readProgress(v.workdir) ?? 0, 'the original multithread victim', 2);
  });

  test('no manifest (an incomplete checkpoint): EMISSING', async () => {
    const dir = copy();
    fs.rmSync(path.join(dir, 'cryopod-manifest.json'));
    await expectRestoreFailure(dir, 'EMISSING', ['cryopod-manifest.json']);
  });
});
