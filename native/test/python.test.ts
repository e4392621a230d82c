/**
 * A real program nobody here wrote: /usr/bin/python3 running victims/dict-counter.py (a dict growing every
 * 50 ms, its size and sum appended to a log opened before the loop). Dumped, killed, restored: the log
 * must go on from exactly where it stopped, every line consistent, and the script's own check must pass.
 */
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, dumpRestoreCheck, expectSameProcessState, snapshot, startProgram, VICTIMS_DIR, waitFor } from './harness';

jest.setTimeout(60_000);
afterEach(cleanup);

const PYTHON = '/usr/bin/python3';

/** The log's "<len> <sum>" lines, each checked: len counts up from 1 and sum = 0^2 + ... + (len-1)^2. */
function logCounts(workdir: string): number[] {
  const lines = fs.readFileSync(path.join(workdir, 'log'), 'utf8').split('\n').filter((l) => /^\d+ \d+$/.test(l));
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
