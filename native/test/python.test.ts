/**
 * A real program nobody here wrote: /usr/bin/python3 running victims/dict-counter.py (a dict growing every
 * 50 ms, its size and sum appended to a log opened before the loop). Dumped, killed, restored: the log
 * must go on from exactly where it stopped, every line consistent, and the script's own check must pass.
 * Started with its stdout on a pipe read outside its tree and dumped with --leave-running, it logs on
 * during and after the dump; killed and restored on a new pipe, it goes on from the line of the dump.
 */
import * as fs from 'fs';
import * as path from 'path';
import { dumpProcess } from '../../checkpoint';
import { assertRunningUntraced, checkResult, cleanup, dumpRestoreCheck, expectSameProcessState, makeTempDir, snapshot, startProgram, VICTIMS_DIR, waitFor, waitGone } from './harness';
import { cliCheck, restoreOnNewPipes, startServer, verdicts } from './servers';

jest.setTimeout(60_000);
afterEach(cleanup);

const PYTHON = '/usr/bin/python3';

/** The log's "<len> <sum>" lines, each checked: len counts up from 1 and sum = 0^2 + ... + (len-1)^2. */
function logCounts(workdir: string): number[] {
  return counts(fs.readFileSync(path.join(workdir, 'log'), 'utf8'));
}

function counts(text: string): number[] {
  const lines = text.split('\n').filter((l) => /^\d+ \d+$/.test(l));
  return lines.map((l, i) => {
    const [n, sum] = l.split(' ').map(BigInt);
    const want = ((n - 1n) * n * (2n * n - 1n)) / 6n;
    if (sum !== want) throw new Error(`log line ${i + 1} "${l}": sum should be ${want}`);
    return Number(n);
  });
}

test('python3: a dict-building loop is restored and continues', async () => {
  const v = await startProgram('python', PYTHON, [path.join(VICTIMS_DIR, 'dict-counter.py')]);
  await waitFor(() => logCounts(v.workdir).length >= 10, 10_000, 'ten lines in the python log');
  const before = snapshot(v.pid);
  expect(before.exe).toMatch(/python3/);

  let lastBeforeDump = 0;
  const { result } = await dumpRestoreCheck(v, {
    beforeCheck: async (r) => {
      // The heap grows as the dict does, so the maps are not compared; the rest is.
      expectSameProcessState(snapshot(r.pid), before, { maps: false });
      lastBeforeDump = logCounts(v.workdir).pop() ?? 0;
      await waitFor(() => (logCounts(v.workdir).pop() ?? 0) >= lastBeforeDump + 10, 15_000, 'the restored python to log 10 more lines');
    },
  });
  expect(result).toBe('PASS');
  const counts = logCounts(v.workdir);
  expect(counts).toEqual(counts.map((_, i) => i + 1));
  expect(counts.length).toBeGreaterThanOrEqual(lastBeforeDump + 10);
  expect(fs.readFileSync(path.join(v.workdir, 'log'), 'utf8')).toMatch(new RegExp(`\ncheck ${counts.length}\n$`));
});

const ARGV = [PYTHON, path.join(VICTIMS_DIR, 'dict-counter.py')];

test('python3: dump --check says every object is saved, the stdout pipe external', async () => {
  const s = await startServer('python', ARGV);
  const { code, reports } = await cliCheck(s.pid);
  expect(code).toBe(0);
  expect(verdicts(reports)).toEqual(['0 devnull saved', '1 pipe external', '2 pipe external', 'reg saved']);
});

test('python3 --leave-running on stdout pipes: logs on during and after the dump; restored after a kill from the line of the dump', async () => {
  const s = await startServer('python', ARGV);
  await waitFor(() => counts(s.before()).length >= 5, 10_000, 'five lines on the python\'s stdout');
  const images = makeTempDir('img-python-lr');
  const atStart = logCounts(s.workdir).pop()!;
  await dumpProcess({ pid: s.pid, dir: images, leaveRunning: true });
  const atEnd = logCounts(s.workdir).pop()!;
  assertRunningUntraced(s.pid, 'python after a --leave-running dump');
  await waitFor(() => (logCounts(s.workdir).pop() ?? 0) >= atEnd + 5, 10_000, 'the original python to log 5 more lines');
  const lastOriginal = await waitFor(() => counts(s.before()).pop()! >= atEnd + 5 && counts(s.before()).pop(), 10_000, 'its stdout to go on');
  expect(counts(s.before())).toEqual(counts(s.before()).map((_, i) => i + 1));
  process.kill(s.pid, 'SIGKILL');
  await waitGone(s.pid, 'the original python');

  const r = await restoreOnNewPipes(images, s.workdir);
  try {
    const after = await waitFor(() => (counts(r.out.read()).length >= 3 ? counts(r.out.read()) : undefined), 10_000, 'lines on the new stdout');
    // The snapshot was taken while the dump ran: between the lines logged at its start and at its end.
    expect(after[0]).toBeGreaterThanOrEqual(atStart + 1);
    expect(after[0]).toBeLessThanOrEqual(atEnd + 1);
    expect(after[0]).toBeLessThan(lastOriginal);
    expect(after).toEqual(after.map((_, i) => after[0] + i));
    expect(await checkResult(r.pid, s.workdir)).toBe('PASS');
  } finally {
    r.out.close();
  }
});
