/**
 * Terminals (native/src/core/files/tty.cc): a process whose stdio is a pseudo-terminal held outside its
 * tree (by `script`) is checked as external, dumped, and restored with its stdio re-attached: stdout to
 * a FIFO (--inherit-fd 1:PATH), stdin and stderr to the restorer's own (the default).
 */
import * as path from 'path';
import { checkProcess, dumpProcess, restoreProcess } from '../../../checkpoint';
import { readCheckpoint } from '../../../images';
import { cleanup, expectKilledByDump, makeTempDir, requestCheck, trackPid, waitFor } from '../harness';
import { FifoReader, startOnTerminal } from './harness';

jest.setTimeout(60_000);
afterEach(cleanup);

test('stdio on a terminal: external in the preflight, dumped, re-attached on restore', async () => {
  const v = await startOnTerminal('tty-stdio');
  const reports = await checkProcess(v.pid);
  expect(reports.filter((r) => r.fd <= 2).map((r) => [r.fd, r.kind, r.verdict])).toEqual([
    [0, 'tty', 'external'], [1, 'tty', 'external'], [2, 'tty', 'external'],
  ]);
  expect(reports[0].object).toMatch(/^\/dev\/pts\/\d+$/);
  const dir = makeTempDir('img-tty');
  await dumpProcess({ pid: v.pid, dir });
  await expectKilledByDump(v);
  const { task } = await readCheckpoint(dir);
  expect(task.files.filter((f) => f.fd <= 2).map((f) => [f.kind, f.state?.num.external])).toEqual([['tty', 1], ['tty', 1], ['tty', 1]]);
  const fifo = new FifoReader(path.join(v.workdir, 'stdout'));
  try {
    const r = await restoreProcess({ dir, inheritFds: [{ fd: 1, path: fifo.path }] });
    trackPid(r.pid);
    expect(await requestCheck(v.workdir)).toBe('PASS');
    expect(await waitFor(() => (fifo.read().includes('after-restore') ? true : undefined), 10_000, 'after-restore on the new stdout')).toBe(true);
  } finally {
    fifo.close();
  }
});
