/**
 * Crash safety of the dumper for the threads besides the main one and for the processes below the root:
 * `cryopod dump` (a real child process) SIGKILLed at its phases and at random moments, plain and
 * --leave-running, of
 *
 *   multithread  one process, two threads (a single-task dump; under --leave-running, the snapshot)
 *   family       a root and two children, three threads each (a tree dump: each process infected,
 *                drained and read in turn)
 *
 * Afterwards every thread of every process runs (its own count moves, or, for multithread, its own check
 * passes: the worker counting, stacks and TLS intact), none is stopped or traced, and no process keeps a
 * parasite mapping, an fd it did not have, or a child it did not make; or (plain) the tree was killed as
 * asked after a complete checkpoint. Non-main threads run their remote syscalls on the parasite's parking
 * gadget and are named in its rescue record; the guard rescues every process of the tree.
 */
import * as fs from 'fs';
import * as path from 'path';
import { MANIFEST_FILE } from '../../images';
import { childrenOf, Dumper, fdList, guardsOf, Mode, startDumper, startVictim, Target } from './crash-harness';
import { assertRunningUntraced, buildVictims, cleanup, isAlive, readFileOrUndefined, readMaps, trackPid, waitFor } from './procs';

type Victim = 'multithread' | 'family';
const RANDOM_RUNS = 12;

/** Where each is killed: a phase, or its n-th time (name#n) in a tree dump, which goes process by process. */
const PHASES: Record<Victim, Record<Mode, string[]>> = {
  multithread: {
    plain: ['seize', 'area', 'infect', 'drain', 'cure', 'state', 'unmap', 'images'],
    'leave-running': ['area', 'infect', 'snapshot', 'cure', 'state', 'unmap', 'drain', 'reap', 'images'],
  },
  family: {
    plain: ['seize', 'area#1', 'infect#1', 'state#1', 'unmap#1', 'area#2', 'infect#2', 'drain#2', 'state#2', 'unmap#3', 'images'],
    'leave-running': ['area#1', 'infect#1', 'state#1', 'area#3', 'infect#3', 'state#3', 'unmap#3', 'images'],
  },
};

const targets: number[] = [];
beforeAll(() => buildVictims());
afterEach(async () => {
  await releaseGuards();
});

async function releaseGuards(): Promise<void> {
  for (const pid of targets.splice(0)) for (const g of guardsOf(pid)) trackPid(g);
  await cleanup();
}

/** The family's counts, per process and thread, as its alive-N files say. */
function counts(t: Target): number[][] {
  return t.pids.map((_, i) => (readFileOrUndefined(path.join(t.workdir, `alive-${i}`)) ?? '').trim().split(' ').map(Number));
}

/** Every thread of every process of the target goes on running. */
async function expectEveryThreadRuns(victim: Victim, t: Target, what: string): Promise<void> {
  if (victim === 'multithread') {
    fs.writeFileSync(path.join(t.workdir, 'check'), '');
    const result = await waitFor(() => readFileOrUndefined(path.join(t.workdir, 'result')), 10_000, `the target to check itself (${what})`);
    expect({ what, result }).toEqual({ what, result: 'PASS\n' });
    return;
  }
  const before = counts(t);
  const moved = (): boolean => counts(t).every((threads, i) => threads.length === 3 && threads.every((c, j) => c > (before[i][j] ?? 0)));
  await waitFor(() => (moved() ? true : undefined), 5000, `every thread of every process to count on (${what}): ${JSON.stringify(before)} -> ${JSON.stringify(counts(t))}`);
}

/**
 * After the guard is done: every process runs free with nothing of ours, or (plain) the tree was
 * SIGKILLed after a complete checkpoint.
 */
async function expectPutBack(victim: Victim, t: Target, mode: Mode, d: Dumper, what: string): Promise<'running' | 'checkpointed'> {
  await waitFor(() => guardsOf(t.pid).length === 0, 15_000, `the guard of ${t.pid} to finish (${what})`);
  const status = readFileOrUndefined(path.join(t.workdir, 'exit-status'));
  if (status !== undefined || !isAlive(t.pid)) {
    const code = status === undefined ? undefined : Number(status.trim());
    if (mode === 'plain' && code === 137 && fs.existsSync(path.join(d.dir, MANIFEST_FILE))) {
      await waitFor(() => (t.pids.every((p) => !isAlive(p)) ? true : undefined), 5000, 'the whole tree to be gone');
      return 'checkpointed';
    }
    throw new Error(`${what}: the root died (exit status ${status?.trim()}, mode ${mode}, last phase ${d.lastPhase()}); dumper said: ${d.stderr()}`);
  }
  for (const [i, p] of t.pids.entries()) {
    if (!isAlive(p)) throw new Error(`${what}: process ${i} (pid ${p}) died (mode ${mode}, last phase ${d.lastPhase()}); dumper said: ${d.stderr()}`);
    assertRunningUntraced(p, `process ${i} of the target (${what})`);
    expect({ what, p, parasite: readMaps(p).filter((l) => l.name.includes('cryopod-parasite')) }).toEqual({ what, p, parasite: [] });
    expect({ what, p, fds: fdList(p, t.workdir) }).toEqual({ what, p, fds: t.fds.get(p) });
  }
  expect({ what, children: childrenOf(t.pid).split(/\s+/).filter(Boolean).map(Number).sort() }).toEqual({ what, children: t.pids.slice(1).sort() });
  for (const p of t.pids.slice(1)) expect({ what, p, children: childrenOf(p) }).toEqual({ what, p, children: '' });
  await expectEveryThreadRuns(victim, t, what);
  return 'running';
}

describe.each<Victim>(['multithread', 'family'])('cryopod dump of %s, SIGKILLed', (victim) => {
  describe.each<Mode>(['plain', 'leave-running'])('%s', (mode) => {
    test.each(PHASES[victim][mode])('at %s: every thread of every process runs on', async (phase) => {
      const t = await startVictim(victim, targets);
      const d = startDumper(t, mode, { killAt: phase });
      await d.exited;
      expect({ phase, signal: d.child.signalCode, stderr: d.child.signalCode ? '' : d.stderr() }).toEqual({ phase, signal: 'SIGKILL', stderr: '' });
      expect(await expectPutBack(victim, t, mode, d, `killed at ${phase}`)).toBe('running');
    });

    test(`${RANDOM_RUNS} kills at random moments`, async () => {
      const probe = await startVictim(victim, targets);
      const started = Date.now();
      const whole = startDumper(probe, mode);
      await whole.exited;
      expect(whole.child.exitCode).toBe(0);
      const span = Math.max(20, (Date.now() - started) * 1.1);
      await releaseGuards();
      const outcomes: Record<string, number> = { running: 0, checkpointed: 0 };
      for (let i = 0; i < RANDOM_RUNS; ++i) {
        const t = await startVictim(victim, targets);
        const d = startDumper(t, mode);
        const delay = Math.random() * span;
        const timer = setTimeout(() => d.child.kill('SIGKILL'), delay);
        await d.exited;
        clearTimeout(timer);
        outcomes[await expectPutBack(victim, t, mode, d, `run ${i}, killed after ${delay.toFixed(0)} ms`)]++;
        await releaseGuards();
      }
      if (mode === 'leave-running') expect(outcomes.checkpointed).toBe(0);
      expect(outcomes.running + outcomes.checkpointed).toBe(RANDOM_RUNS);
      process.stdout.write(`random kills (${victim}, ${mode}, span ${span.toFixed(0)} ms): ${JSON.stringify(outcomes)}\n`);
    });
  });
});
