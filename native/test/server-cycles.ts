/**
 * The two round trips every real server of the native tests goes through (servers.ts starts them):
 *
 *   killCycle          ask twice ─► dump (kill) ─► restore on new stdio pipes ─► the count goes on from
 *                      the last answer, and the restored server's log arrives on the new pipe
 *   leaveRunningCycle  a client asks without pause ─► dump --leave-running: the original answers during
 *                      and after the dump, its log on the old pipe ─► kill it ─► restore: the count goes
 *                      on from where it was at the dump, not from where the original got to
 *
 * `ask` sends one request and returns the server's hit count from the answer, after checking that the
 * rest of the answer agrees with it (the state the server keeps: a map's sum, a worker's total).
 * `logged(n)` is the line the server writes on stdout for hit n.
 */
import { dumpProcess } from '../../checkpoint';
import { assertRunningUntraced, makeTempDir, waitFor, waitGone } from './procs';
import { FifoReader } from './files/harness';
import { httpGet, Poller, restoreOnNewPipes, Server } from './servers';

export interface Protocol {
  ask: (port: number) => Promise<number>;
  logged: (n: number) => string;
}

export interface RestoredServer {
  pid: number;
  out: FifoReader;
  /** The hit count of the restored server's last answer. */
  last: number;
}

async function expectOnNewPipe(out: FifoReader, line: string, what: string): Promise<void> {
  await waitFor(() => (out.read().includes(line) ? true : undefined), 15_000, `"${line}" from ${what} on its new stdout`);
}

/** Dumps (killing) and restores `s`; the caller closes `out`. */
export async function killCycle(s: Server, p: Protocol): Promise<RestoredServer> {
  const first = await p.ask(s.port);
  expect(await p.ask(s.port)).toBe(first + 1);
  const images = makeTempDir(`img-${s.name}`);
  const summary = await dumpProcess({ pid: s.pid, dir: images });
  expect(summary.pagesMethods).toEqual(['parasite']);
  await waitGone(s.pid, `the dumped ${s.name}`);
  // The reader outside the tree got everything written before the checkpoint.
  await waitFor(() => s.before().includes(p.logged(first + 1)) || undefined, 10_000, `${p.logged(first + 1)} in ${s.name}'s old log`);

  const r = await restoreOnNewPipes(images, s.workdir);
  try {
    expect(await p.ask(s.port)).toBe(first + 2);
    expect(await p.ask(s.port)).toBe(first + 3);
    await expectOnNewPipe(r.out, p.logged(first + 3), `the restored ${s.name}`);
    return { ...r, last: first + 3 };
  } catch (e) {
    r.out.close();
    throw e;
  }
}

/**
 * Dumps `s` with --leave-running under a client that never pauses, kills it, restores; the caller closes
 * `out`. `whileOriginalRuns(images)` runs after the dump, the original still serving.
 */
export async function leaveRunningCycle(s: Server, p: Protocol, whileOriginalRuns?: (images: string) => Promise<void>): Promise<RestoredServer> {
  const client = new Poller(() => p.ask(s.port));
  let stopped = false;
  try {
    await client.more(3, `${s.name} answering before the dump`);
    const images = makeTempDir(`img-${s.name}-lr`);
    const t0 = Date.now();
    const summary = await dumpProcess({ pid: s.pid, dir: images, leaveRunning: true });
    const t1 = Date.now();
    expect(summary.pagesMethods).toEqual(['parasite']);
    assertRunningUntraced(s.pid, `${s.name} after a --leave-running dump`);
    await client.more(5, `${s.name} answering after the dump`);
    if (whileOriginalRuns) {
      await whileOriginalRuns(images);
      await client.more(2, `${s.name} answering after that`);
    }
    await client.stop();
    stopped = true;
    const counts = client.answers.map((a) => a.value);
    // Each request got its answer, in order, the whole time: none was lost while the dump ran.
    expect(counts).toEqual(counts.map((_, i) => counts[0] + i));
    const lastBefore = client.between(0, t0).pop()!;
    const firstAfter = client.between(t1, Infinity)[0];
    const lastOriginal = counts[counts.length - 1];
    expect(lastOriginal).toBeGreaterThanOrEqual(firstAfter + 4);
    await waitFor(() => s.before().includes(p.logged(lastOriginal)) || undefined, 10_000, `${p.logged(lastOriginal)} in ${s.name}'s old log`);

    process.kill(s.pid, 'SIGKILL');
    await waitGone(s.pid, `the original ${s.name}, killed after the dump`);
    const r = await restoreOnNewPipes(images, s.workdir);
    try {
      // The snapshot was taken between the last answer before the dump and the first one after it.
      const next = await p.ask(s.port);
      expect(next).toBeGreaterThanOrEqual(lastBefore + 1);
      expect(next).toBeLessThanOrEqual(firstAfter + 1);
      expect(await p.ask(s.port)).toBe(next + 1);
      await expectOnNewPipe(r.out, p.logged(next + 1), `the restored ${s.name}`);
      return { ...r, last: next + 1 };
    } catch (e) {
      r.out.close();
      throw e;
    }
  } finally {
    if (!stopped) await client.stop().catch(() => undefined);
  }
}

/** "<hits> <sum>" (the Go and JVM servers): the sum of their map's values k*k for k = 1..hits. */
export const squaresProtocol: Protocol = {
  ask: async (port) => {
    const text = await httpGet(port);
    const [n, sum] = text.split(' ').map(BigInt);
    if (sum !== (n * (n + 1n) * (2n * n + 1n)) / 6n) throw new Error(`answer "${text}": the map's sum is wrong`);
    return Number(n);
  },
  logged: (n) => `hit ${n}\n`,
};

/**
 * The runtime of a restored Go or JVM server goes on: its garbage collector runs (/gc stops every thread
 * at a safepoint and answers the hit count) and its timer fires (/ticks grows).
 */
export async function expectRuntimeAlive(port: number, hits: number): Promise<void> {
  expect(Number(await httpGet(port, '/gc'))).toBe(hits);
  const ticks = Number(await httpGet(port, '/ticks'));
  const deadline = Date.now() + 10_000;
  let now = ticks;
  while (now <= ticks + 5 && Date.now() < deadline) now = Number(await httpGet(port, '/ticks'));
  expect(now).toBeGreaterThan(ticks + 5);
}
