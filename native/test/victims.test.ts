/**
 * Every victim (native/test/victims, protocol in victim.h) is dumped, killed, restored as a new process,
 * and must then pass its own check. From outside, the restored process must look like its original:
 * exe, cwd, comm, open fds, signal masks and /proc/PID/maps (addresses, perms, offsets, files; [vdso] and
 * [vvar] at the same addresses too).
 */
import * as fs from 'fs';
import * as path from 'path';
import { restoreProcess } from '../../checkpoint';
import {
  PAGE_SIZE,
  assertRunningUntraced,
  checkResult,
  Victim,
  checkpoint,
  cleanup,
  dumpRestoreCheck,
  expectKilledByDump,
  expectSameProcessState,
  procState,
  readFileOrUndefined,
  readProgress,
  restore,
  snapshot,
  startVictim,
  trackPid,
  waitFor,
  waitForCpu,
  waitForProgress,
  waitGone,
  readBack,
} from './harness';

jest.setTimeout(60_000);
afterEach(cleanup);

/** <workdir>/layout of the memory victim: region -> [start, end). */
function readLayout(workdir: string): Record<string, { start: number; end: number }> {
  const out: Record<string, { start: number; end: number }> = {};
  for (const line of fs.readFileSync(path.join(workdir, 'layout'), 'utf8').trim().split('\n')) {
    const [name, start, len] = line.split(' ');
    out[name] = { start: parseInt(start, 16), end: parseInt(start, 16) + parseInt(len, 16) };
  }
  return out;
}

/** "tick N" lines of the file-offset victim's log. */
function ticks(workdir: string): number[] {
  return fs
    .readFileSync(path.join(workdir, 'log'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('tick '))
    .map((l) => Number(l.slice(5)));
}

describe('victims: dump, kill, restore, verify', () => {
  test.each(['parasite', 'vm_readv'] as const)('memory (dumped with %s): heap, stack, anonymous, sparse, read-only, COW-ed file page and brk keep their contents', async (method) => {
    const v = await startVictim('memory');
    const layout = readLayout(v.workdir);
    const before = snapshot(v.pid);
    const { cp, result } = await dumpRestoreCheck(v, {
      method,
      beforeCheck: (r) => expectSameProcessState(snapshot(r.pid), before),
    });
    expect(result).toBe('PASS');

    // Only touched private pages are in the image: all of anon, 1 in 8 of sparse, the read-only page,
    // and of the private file mapping only its COW-ed page.
    const img = await readBack(cp.dir);
    expect({ pid: img.pid, comm: img.comm }).toEqual({ pid: v.pid, comm: 'memory' });
    const vmaAt = (r: { start: number; end: number }) => {
      const vma = img.vmas.find((x) => x.start === r.start);
      if (!vma) throw new Error(`no VMA starts at ${r.start.toString(16)} in the checkpoint`);
      return { end: vma.end, prot: vma.prot, kind: vma.kind, pages: vma.pages, bytes: vma.bytes };
    };
    const n = (bytes: number) => bytes / PAGE_SIZE;
    expect(vmaAt(layout.anon)).toEqual({ end: layout.anon.end, prot: 'rw-p', kind: 'anon', pages: n(32 << 20), bytes: 32 << 20 });
    expect(vmaAt(layout.sparse)).toEqual({ end: layout.sparse.end, prot: 'rw-p', kind: 'anon', pages: n(4 << 20) / 8, bytes: (4 << 20) / 8 });
    expect(vmaAt(layout.ro)).toEqual({ end: layout.ro.end, prot: 'r--p', kind: 'anon', pages: 1, bytes: PAGE_SIZE });
    expect(vmaAt(layout.cow)).toEqual({ end: layout.cow.end, prot: 'rw-p', kind: 'file-private', pages: 1, bytes: PAGE_SIZE });
    expect(img.totalPages).toBe(cp.summary.pages);
    expect(img.totalBytes).toBe(cp.summary.pages * PAGE_SIZE);
  });

  test('file-offset: fds keep offset, flags and cwd; the log fd keeps appending where it left off', async () => {
    const v = await startVictim('file-offset');
    await waitFor(() => ticks(v.workdir).length >= 3, 5_000, 'three ticks in the log');
    const before = snapshot(v.pid);
    expect(before.cwd).toBe(v.workdir);
    expect(Object.values(before.fds)).toEqual(
      expect.arrayContaining([path.join(v.workdir, 'data.bin'), path.join(v.workdir, 'log')]),
    );
    let lastBeforeDump = 0;
    const { result } = await dumpRestoreCheck(v, {
      beforeCheck: async (r) => {
        expectSameProcessState(snapshot(r.pid), before);
        lastBeforeDump = ticks(v.workdir).pop() ?? 0;
        await waitFor(() => (ticks(v.workdir).pop() ?? 0) >= lastBeforeDump + 5, 10_000, 'the restored victim to log 5 more ticks');
      },
    });
    expect(result).toBe('PASS');
    // One counter from 1, no gap and no repeat across the dump; then the victim's final "check" line.
    const all = ticks(v.workdir);
    expect(all).toEqual(all.map((_, i) => i + 1));
    expect(all.length).toBeGreaterThanOrEqual(lastBeforeDump + 5);
    expect(fs.readFileSync(path.join(v.workdir, 'log'), 'utf8').endsWith('check\n')).toBe(true);
  });

  test('busy: a pure user-space loop continues with its registers intact', async () => {
    const v = await startVictim('busy');
    await waitForCpu(v.pid, 'the busy victim', 10);
    expect(procState(v.pid)).toBe('R');
    const before = snapshot(v.pid);
    const { result } = await dumpRestoreCheck(v, {
      beforeCheck: async (r) => {
        expectSameProcessState(snapshot(r.pid), before);
        await waitForCpu(r.pid, 'the restored busy victim', 20);
        assertRunningUntraced(r.pid, 'the restored busy victim');
      },
    });
    expect(result).toBe('PASS');
    expect(readFileOrUndefined(path.join(v.workdir, 'stats'))).toMatch(/^\d+ chunks/);
  });

  test('sleeper: a task dumped inside nanosleep/clock_nanosleep sleeps on and keeps counting', async () => {
    const v = await startVictim('sleeper');
    await waitForProgress(v.workdir, 0, 'the sleeper', 2);
    // It wakes briefly to write its progress: wait until it is back inside its sleep (not a one-off read,
    // which a loaded machine can catch running).
    await waitFor(() => procState(v.pid) === 'S', 5_000, 'the sleeper to be asleep (state S)');
    const before = snapshot(v.pid);
    const { result } = await dumpRestoreCheck(v, {
      beforeCheck: async (r) => {
        expectSameProcessState(snapshot(r.pid), before);
        const atRestore = readProgress(v.workdir) ?? 0;
        await waitForProgress(v.workdir, atRestore, 'the restored sleeper', 3);
      },
    });
    expect(result).toBe('PASS');
  });

  test('vdso-clock: clock_gettime through the vDSO stays monotonic and fast, [vdso]/[vvar] in place', async () => {
    const v = await startVictim('vdso-clock');
    const before = snapshot(v.pid);
    expect(before.maps.some((l) => l.endsWith(' [vdso]'))).toBe(true);
    const { result } = await dumpRestoreCheck(v, {
      beforeCheck: (r) => expectSameProcessState(snapshot(r.pid), before),
    });
    expect(result).toBe('PASS');
  });

  test('sigaction: handler, flags, mask, altstack, ignored and blocked signals survive; the handler fires', async () => {
    const v = await startVictim('sigaction');
    process.kill(v.pid, 'SIGUSR1');
    const got = await waitFor(() => readFileOrUndefined(path.join(v.workdir, 'got-usr1')), 5_000, 'the victim to count SIGUSR1');
    expect(got.trim()).toBe('1 mask_ok=1 altstack=1');
    const before = snapshot(v.pid);
    // SIGUSR1 (10) caught, SIGUSR2 (12) blocked, SIGPIPE (13) ignored: bits n-1 of the masks.
    expect(BigInt(`0x${before.signals.SigCgt}`) & (1n << 9n)).toBe(1n << 9n);
    expect(BigInt(`0x${before.signals.SigBlk}`) & (1n << 11n)).toBe(1n << 11n);
    expect(BigInt(`0x${before.signals.SigIgn}`) & (1n << 12n)).toBe(1n << 12n);
    const { result } = await dumpRestoreCheck(v, {
      beforeCheck: (r) => expectSameProcessState(snapshot(r.pid), before),
    });
    expect(result).toBe('PASS');
  });

  test('task-state: rseq, TLS, robust list, clear_child_tid, umask, personality and comm survive', async () => {
    const v = await startVictim('task-state');
    const before = snapshot(v.pid);
    expect(before.comm).toBe('cryo-task');
    const { result } = await dumpRestoreCheck(v, {
      beforeCheck: (r) => expectSameProcessState(snapshot(r.pid), before),
    });
    expect(result).toBe('PASS');
    expect(readFileOrUndefined(path.join(v.workdir, 'stats'))).toBe('rseq=1\n');
  });

  test('multithread: both threads come back, with their stacks and TLS, and both run on', async () => {
    const v = await startVictim('multithread');
    await waitForProgress(v.workdir, 0, 'the multithread victim', 5);
    const tids = fs.readdirSync(`/proc/${v.pid}/task`).map(Number).sort();
    expect(tids.length).toBe(2);
    const before = snapshot(v.pid);
    const { restored, result } = await dumpRestoreCheck(v, {
      beforeCheck: async (r) => {
        expectSameProcessState(snapshot(r.pid), before);
        const now = fs.readdirSync(`/proc/${r.pid}/task`).map(Number).sort();
        // With the PID kept, the thread IDs are kept too (clone3 set_tid).
        if (r.pid === v.pid) expect(now).toEqual(tids);
        else expect(now.length).toBe(2);
        assertRunningUntraced(r.pid, 'the restored multithread victim');
        await waitForProgress(v.workdir, readProgress(v.workdir) ?? 0, 'the restored multithread victim', 5);
      },
    });
    expect(restored.pid).toBeGreaterThan(0);
    expect(result).toBe('PASS');
  });

  test('pipe-holder: a pipe with 64 tokens in flight comes back with the same bytes queued', async () => {
    const v = await startVictim('pipe-holder');
    await waitForProgress(v.workdir, 0, 'the pipe-holder', 3);
    const { result } = await dumpRestoreCheck(v);
    expect(result).toBe('PASS');
  });

  test('shared-anon: MAP_SHARED anonymous memory keeps its contents, address and sharing', async () => {
    const v = await startVictim('shared-anon');
    await waitForProgress(v.workdir, 0, 'the shared-anon victim', 1);
    const before = snapshot(v.pid);
    const { result } = await dumpRestoreCheck(v, {
      // The shared mapping's backing object is new (its name and inode may differ): maps compared by the
      // victim itself (address, rw-s).
      beforeCheck: (r) => expectSameProcessState(snapshot(r.pid), before, { maps: false }),
    });
    expect(result).toBe('PASS');
  });

  test('a restored process can be dumped and restored again, and is still the same process', async () => {
    const v = await startVictim('memory');
    const before = snapshot(v.pid);
    const cp = await checkpoint(v);
    await expectKilledByDump(v);
    const first = await restore(cp.dir);
    const again: Victim = { name: 'memory (restored once)', pid: first.pid, workdir: v.workdir };
    const cp2 = await checkpoint(again);
    expect(cp2.summary.pages).toBe(cp.summary.pages);
    await expectKilledByDump(again);
    const second = await restore(cp2.dir);
    expectSameProcessState(snapshot(second.pid), before);
    expect(await checkResult(second.pid, v.workdir)).toBe('PASS');
  });

  test('one checkpoint restores twice: the images are not consumed', async () => {
    const v = await startVictim('sigaction');
    process.kill(v.pid, 'SIGUSR1');
    await waitFor(() => readFileOrUndefined(path.join(v.workdir, 'got-usr1')), 5_000, 'the victim to count SIGUSR1');
    const cp = await checkpoint(v);
    await expectKilledByDump(v);
    for (const round of [1, 2]) {
      fs.rmSync(path.join(v.workdir, 'check'), { force: true });
      fs.rmSync(path.join(v.workdir, 'result'), { force: true });
      const r = await restore(cp.dir);
      expect({ round, result: await checkResult(r.pid, v.workdir) }).toEqual({ round, result: 'PASS' });
      await waitGone(r.pid, `restored copy ${round}`);
    }
  });

  test('leave-running: the victim runs on untouched after the dump, and the checkpoint restores too', async () => {
    const v = await startVictim('sleeper');
    await waitForProgress(v.workdir, 0, 'the sleeper', 2);
    const before = snapshot(v.pid);
    const cp = await checkpoint(v, { leaveRunning: true });
    assertRunningUntraced(v.pid, 'the victim of a leave-running dump');
    // Nothing of the dump is left in the victim: no parasite mapping, no extra fd, same signal state.
    expectSameProcessState(snapshot(v.pid), before);
    await waitForProgress(v.workdir, readProgress(v.workdir) ?? 0, 'the victim of a leave-running dump', 2);
    expect(await checkResult(v.pid, v.workdir)).toBe('PASS');
    expect(await waitGone(v.pid, v.name)).not.toEqual({ code: 1, signal: null });

    // The checkpoint is a copy of the victim as it was: restored, it finds the check file at once.
    fs.rmSync(path.join(v.workdir, 'result'));
    const r = await restoreProcess({ dir: cp.dir });
    trackPid(r.pid);
    expect(await checkResult(r.pid, v.workdir)).toBe('PASS');
  });
});
