/**
 * Crash safety of the dumper: `cryopod dump` (a real child process) SIGKILLed at every phase of a dump,
 * and at random moments, plain and --leave-running. Afterwards the target must be running (or, plain,
 * cleanly checkpointed and killed as asked: SIGKILL, with a complete checkpoint), never dead of a signal
 * it was not sent, never stopped (T), never traced, with no parasite mapping, no fd it did not have and
 * no snapshot child left. Its holder (sh) records how it ended, so a SIGTRAP or SIGSEGV death shows.
 *
 * Per phase the dumper is held with its stepping hook (`--phase-fd 3`: it writes each phase's name and
 * waits for a byte) and killed exactly there. The random runs kill it after a random delay across the
 * whole dump (measured first, per mode, on an unkilled dump of the same target).
 *
 * What does the putting back: the task is parked in the parasite when the dumper dies (never trapped), and
 * the dump's guard (checkpoint/guard.ts), a process of its own, rescues it from the area's record.
 *
 * And `cryopod restore` SIGKILLed at random moments: the half-built stub dies with it (PTRACE_O_EXITKILL),
 * so afterwards either the restored process runs and passes its own check, or nothing of it is left.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { MANIFEST_FILE } from '../../images';
import { STUB_PATH } from '../../checkpoint';
import { CLI, childrenOf, Dumper, fdList, guardsOf, Mode, startDumper, startVictim, Target } from './crash-harness';
import {
  assertRunningUntraced,
  cleanup,
  isAlive,
  makeTempDir,
  readFileOrUndefined,
  readMaps,
  readProgress,
  trackMount,
  trackPid,
  victimPath,
  buildVictims,
  waitFor,
  waitForProgress,
} from './procs';

const PHASES: Record<Mode, string[]> = {
  plain: ['seize', 'area', 'infect', 'drain', 'cure', 'state', 'unmap', 'images'],
  'leave-running': ['seize', 'area', 'infect', 'snapshot', 'cure', 'state', 'unmap', 'drain', 'reap', 'images'],
};
const RANDOM_RUNS = 20;

/** TracerPid of a process (0: untraced; -1: gone). */
function tracerOf(pid: number): number {
  const m = /TracerPid:\s+(\d+)/.exec(readFileOrUndefined(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) : -1;
}

/** The ticker victim (its ready file holds its pid). */
async function startTarget(): Promise<Target> {
  return startVictim('ticker', targets);
}

/**
 * The outcome the issue asks for. Waits (deadline) until the guard is done, then: the target runs free
 * and makes progress with no parasite, fd or child of ours; or (plain only) it was killed by SIGKILL
 * after a complete checkpoint.
 */
async function expectPutBack(t: Target, mode: Mode, d: Dumper, what: string): Promise<'running' | 'checkpointed'> {
  await waitFor(() => guardsOf(t.pid).length === 0, 15_000, `the guard of ${t.pid} to finish (${what})`);
  const status = readFileOrUndefined(path.join(t.workdir, 'exit-status'));
  if (status !== undefined || !isAlive(t.pid)) {
    const code = status === undefined ? undefined : Number(status.trim());
    if (mode === 'plain' && code === 137 && fs.existsSync(path.join(d.dir, MANIFEST_FILE))) return 'checkpointed';
    throw new Error(`${what}: the target died (exit status ${status?.trim()}, mode ${mode}, last phase ${d.lastPhase()}); dumper said: ${d.stderr()}`);
  }
  assertRunningUntraced(t.pid, `the target (${what})`);
  expect({ what, parasite: readMaps(t.pid).filter((l) => l.name.includes('cryopod-parasite')) }).toEqual({ what, parasite: [] });
  expect({ what, fds: fdList(t.pid, t.workdir) }).toEqual({ what, fds: t.fds.get(t.pid) });
  expect({ what, children: childrenOf(t.pid) }).toEqual({ what, children: '' });
  return 'running';
}

const targets: number[] = [];
beforeAll(() => buildVictims());
afterEach(async () => {
  for (const pid of targets.splice(0)) for (const g of guardsOf(pid)) trackPid(g);
  await cleanup();
});

describe.each<Mode>(['plain', 'leave-running'])('cryopod dump %s, SIGKILLed', (mode) => {
  test.each(PHASES[mode])('at phase %s: the target is put back', async (phase) => {
    const t = await startTarget();
    const d = startDumper(t, mode, { killAt: phase });
    await d.exited;
    expect(d.child.signalCode).toBe('SIGKILL'); // it was held at the phase, so it died there
    const outcome = await expectPutBack(t, mode, d, `killed at ${phase}`);
    expect(outcome).toBe('running'); // every phase here is before the kill a plain dump ends with
    const p = readProgress(t.workdir) ?? 0;
    await waitForProgress(t.workdir, p, `the target after a kill at ${phase}`);
    fs.writeFileSync(path.join(t.workdir, 'check'), '');
    await waitFor(() => readFileOrUndefined(path.join(t.workdir, 'result')), 10_000, 'the target to check itself');
    expect(readFileOrUndefined(path.join(t.workdir, 'result'))).toBe('PASS\n');
  });

  test(`${RANDOM_RUNS} kills at random moments`, async () => {
    // How long a whole dump takes here, to spread the kills over it (and a little past it).
    const probe = await startTarget();
    const started = Date.now();
    const whole = startDumper(probe, mode);
    await whole.exited;
    const span = Math.max(20, (Date.now() - started) * 1.1);
    const outcomes: Record<string, number> = { running: 0, checkpointed: 0 };
    for (let i = 0; i < RANDOM_RUNS; ++i) {
      const t = await startTarget();
      const d = startDumper(t, mode);
      const delay = Math.random() * span;
      const timer = setTimeout(() => d.child.kill('SIGKILL'), delay);
      await d.exited;
      clearTimeout(timer);
      outcomes[await expectPutBack(t, mode, d, `run ${i}, killed after ${delay.toFixed(0)} ms`)]++;
      for (const pid of targets.splice(0)) for (const g of guardsOf(pid)) trackPid(g);
      await cleanup();
    }
    if (mode === 'leave-running') expect(outcomes.checkpointed).toBe(0);
    expect(outcomes.running + outcomes.checkpointed).toBe(RANDOM_RUNS);
    process.stdout.write(`random kills (${mode}, span ${span.toFixed(0)} ms): ${JSON.stringify(outcomes)}\n`);
  });
});

describe.each<Mode>(['plain', 'leave-running'])('cryopod dump %s into a full disk', (mode) => {
  test('fails with ENOSPC, leaves no partial image, and the target runs on unharmed', async () => {
    const t = await startTarget();
    // A 2 MiB tmpfs as the image directory: the ticker's 8 MiB of pages cannot fit.
    const dir = makeTempDir('full');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', dir]);
    trackMount(dir);
    const d = startDumper(t, mode, { dir });
    await d.exited;
    expect(d.child.exitCode).toBe(1);
    expect(d.stderr()).toMatch(/ENOSPC|no space left/i);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(await expectPutBack(t, mode, d, 'disk full')).toBe('running');
    await waitForProgress(t.workdir, readProgress(t.workdir) ?? 0, 'the target after a failed dump');
    fs.writeFileSync(path.join(t.workdir, 'check'), '');
    await waitFor(() => readFileOrUndefined(path.join(t.workdir, 'result')), 10_000, 'the target to check itself');
    expect(readFileOrUndefined(path.join(t.workdir, 'result'))).toBe('PASS\n');
  });
});

describe('cryopod restore, SIGKILLed at random moments', () => {
  test('leaves the restored process running and whole, or nothing at all', async () => {
    const t = await startTarget();
    const d = startDumper(t, 'plain');
    await d.exited;
    expect(d.child.exitCode).toBe(0);
    const stubs = (): number[] =>
      fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => {
        try {
          return fs.readlinkSync(`/proc/${p}/exe`) === STUB_PATH;
        } catch {
          return false;
        }
      });
    // Restored copies of the target: its binary, its workdir in its argv (a restore keeps the PID only
    // when it is free, so a copy may have another one).
    const copies = (): number[] =>
      fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => {
        try {
          return fs.readlinkSync(`/proc/${p}/exe`) === victimPath('ticker') && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(t.workdir);
        } catch {
          return false;
        }
      });
    const restore = () => {
      const child = spawn(process.execPath, [CLI, 'restore', '--dir', d.dir], { stdio: 'ignore' });
      trackPid(child.pid!);
      return { child, exited: new Promise<void>((resolve) => child.on('exit', () => resolve())) };
    };
    const timed = Date.now();
    const whole = restore();
    await whole.exited;
    const span = (Date.now() - timed) * 1.3;
    const first = await waitFor(() => (copies().length === 1 ? copies()[0] : undefined), 5000, 'the unkilled restore to run the target');
    trackPid(first);
    process.kill(first, 'SIGKILL');
    await waitFor(() => copies().length === 0, 5000, 'the restored target to die');
    const outcomes = { restored: 0, nothing: 0 };
    for (let i = 0; i < 10; ++i) {
      const r = restore();
      const delay = Math.random() * span;
      const timer = setTimeout(() => r.child.kill('SIGKILL'), delay);
      await r.exited;
      clearTimeout(timer);
      // A stub that had sent its ready byte but was not seized yet when its restorer died is untouched
      // (untraced, nothing of the checkpoint in it) and leaves on its own within its 30 s (native/stub/
      // stub.c); a half-built one must not exist (the morph seizes with PTRACE_O_EXITKILL). Stubs of other
      // suites running meanwhile are morphed within moments.
      await waitFor(() => stubs().every((p) => tracerOf(p) === 0 && (readFileOrUndefined(`/proc/${p}/maps`) ?? '').split('\n').filter(Boolean).every((l) => /cryopod-stub|\[(vdso|vvar|vvar_vclock|stack|vsyscall)\]/.test(l))),
        5000, `no half-built stub after a kill at ${delay.toFixed(0)} ms (run ${i})`);
      stubs().forEach(trackPid);
      const now = copies();
      now.forEach(trackPid);
      expect({ run: i, copies: now.length <= 1 }).toEqual({ run: i, copies: true });
      if (now.length === 1) {
        assertRunningUntraced(now[0], `the restored target (run ${i})`);
        const p = readProgress(t.workdir) ?? 0;
        await waitForProgress(t.workdir, p, `the restored target (run ${i})`);
        process.kill(now[0], 'SIGKILL');
        await waitFor(() => copies().length === 0, 5000, 'the restored target to die');
        outcomes.restored++;
      } else {
        outcomes.nothing++;
      }
    }
    expect(outcomes.restored + outcomes.nothing).toBe(10);
    process.stdout.write(`random restore kills (span ${span.toFixed(0)} ms): ${JSON.stringify(outcomes)}\n`);
  });
});
