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
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { MANIFEST_FILE } from '../../images';
import { STUB_PATH } from '../../checkpoint';
import {
  assertRunningUntraced,
  cleanup,
  isAlive,
  makeTempDir,
  procPpid,
  readFds,
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

const CLI = path.join(__dirname, '..', '..', 'bin', 'cryopod.js');
type Mode = 'plain' | 'leave-running';
const PHASES: Record<Mode, string[]> = {
  plain: ['seize', 'infect', 'drain', 'cure', 'images'],
  'leave-running': ['seize', 'infect', 'snapshot', 'cure', 'drain', 'images'],
};
const RANDOM_RUNS = 20;

interface Target {
  pid: number;
  workdir: string;
  fds: string[];
}

/** The ticker victim under `sh`, which writes the victim's exit status (128+N for signal N) to exit-status. */
async function startTarget(): Promise<Target> {
  const workdir = makeTempDir('crash');
  const launcher = spawn('setsid', ['-f', 'sh', '-c', '"$0" "$1"; echo $? > "$1/exit-status"', victimPath('ticker'), workdir], {
    stdio: 'ignore',
  });
  await new Promise((resolve) => launcher.on('exit', resolve));
  const ready = await waitFor(() => readFileOrUndefined(path.join(workdir, 'ready')), 10_000, 'ticker ready');
  const pid = Number(ready.trim());
  trackPid(pid);
  targets.push(pid);
  const holder = procPpid(pid);
  if (holder && holder > 1) trackPid(holder);
  return { pid, workdir, fds: fdList(pid, workdir) };
}

/** Its fds but the progress file it opens for a moment every tick (in its workdir). */
function fdList(pid: number, workdir: string): string[] {
  return [...readFds(pid)].filter(([, target]) => !target.startsWith(workdir)).map(([fd, target]) => `${fd} ${target}`).sort();
}

/** Guards (checkpoint/guard.ts) started for this pid: they outlive the dumper they watch. */
function guardsOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const argv = (readFileOrUndefined(`/proc/${e}/cmdline`) ?? '').split('\0');
    if (argv.some((a) => a.endsWith('cryopod-guard')) && argv.includes(String(pid))) out.push(Number(e));
  }
  return out;
}

function childrenOf(pid: number): string {
  let all = '';
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) all += readFileOrUndefined(`/proc/${pid}/task/${tid}/children`) ?? '';
  return all.trim();
}

interface Dumper {
  child: ChildProcess;
  dir: string;
  exited: Promise<void>;
  stderr: () => string;
  /** The last phase it reported (the random runs let it go on at once: for the failure message). */
  lastPhase: () => string;
}

function startDumper(t: Target, mode: Mode, opts: { killAt?: string; dir?: string } = {}): Dumper {
  const dir = opts.dir ?? makeTempDir('crash-img');
  const args = ['dump', '--pid', String(t.pid), '--dir', dir, ...(mode === 'leave-running' ? ['--leave-running'] : []), '--phase-fd', '3'];
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  trackPid(child.pid!);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let last = '(none)';
  const hook = child.stdio[3] as unknown as import('net').Socket;
  let buf = '';
  hook.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      last = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (last === opts.killAt) child.kill('SIGKILL');
      else hook.write('x');
    }
  });
  hook.on('error', () => undefined);
  return { child, dir, exited, stderr: () => err, lastPhase: () => last };
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
  expect({ what, fds: fdList(t.pid, t.workdir) }).toEqual({ what, fds: t.fds });
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
      await waitFor(() => stubs().length === 0, 5000, `no half-built stub after a kill at ${delay.toFixed(0)} ms (run ${i})`);
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
