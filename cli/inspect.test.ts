/**
 * `cryopod inspect` on a real checkpoint: the report is what the verifying reader holds (VMAs, totals),
 * plus the threads and fds, and `main` prints it as a table and as JSON.
 */
import { inspectImages } from './inspect';
import { main } from './main';
import { checkpoint, cleanup, expectKilledByDump, readBack, startVictim, waitForProgress } from '../native/test/harness';

jest.setTimeout(60_000);
afterAll(cleanup);

function sink(): { write: (s: string) => boolean; text: () => string } {
  let out = '';
  return { write: (s: string) => ((out += s), true), text: () => out };
}

test('inspect reports the VMAs and totals the reader holds, its threads and fds; main prints them', async () => {
  const v = await startVictim('sleeper');
  await waitForProgress(v.workdir, 0, 'the sleeper', 1);
  const cp = await checkpoint(v);
  await expectKilledByDump(v);

  const report = await inspectImages(cp.dir);
  const back = await readBack(cp.dir);
  expect({ pid: report.pid, comm: report.comm, vmas: report.vmas, pages: report.totalPages, bytes: report.totalBytes }).toEqual({
    pid: back.pid,
    comm: back.comm,
    vmas: back.vmas,
    pages: back.totalPages,
    bytes: back.totalBytes,
  });
  expect(report.pid).toBe(v.pid);
  expect(report.threads).toBe(1);
  expect(report.totalPages).toBe(cp.summary.pages);
  expect(report.files.map((f) => f.fd)).toEqual(expect.arrayContaining([0, 1, 2]));

  const table = sink();
  expect(await main(['inspect', cp.dir], table as unknown as typeof process.stdout)).toBe(0);
  expect(table.text()).toContain(`checkpoint ${cp.dir}`);
  expect(table.text()).toMatch(/^fd {2}kind/m);
  const json = sink();
  expect(await main(['inspect', cp.dir, '--json'], json as unknown as typeof process.stdout)).toBe(0);
  expect(JSON.parse(json.text())).toEqual(JSON.parse(JSON.stringify(report)));
});
