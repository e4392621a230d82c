/**
 * `cryopod dump --check` (cli/check.ts, native/src/core/files/preflight.cc): the verdict per fd of real
 * processes, read from /proc without stopping them: an io_uring refused by name (exit 1), an inotify
 * with an event queued unread refused (its event is still there for the program afterwards), eventfds
 * saved, a stdout pipe read outside the tree external (exit 0), a unix socket connected to a process
 * outside the tree refused naming who holds its peer (exit 1; the dump's refusal: unix-sockets.test.ts);
 * the process runs on untouched.
 */
import { FdReport } from '../../../checkpoint';
import { assertRunningUntraced, cleanup, readProgress, requestCheck, waitForProgress } from '../harness';
import { cliCheck } from '../cli-check';
import { withOutsideUnixClient } from '../unix-outside';
import { startFilesVictim, startWithStdoutPipe } from './harness';

jest.setTimeout(60_000);
afterEach(cleanup);

const check = cliCheck;

test('an io_uring is refused by name, exit 1; the process is not stopped and runs on', async () => {
  const v = await startFilesVictim('io-uring-holder');
  const table = await check(v.pid, false);
  expect(table.code).toBe(1);
  expect(table.text).toMatch(/\b3\s+anon_inode:\[io_uring\]\s+-\s+refused\s+an io_uring instance/);
  expect(table.text).toMatch(/1 object cannot be saved/);
  const json = JSON.parse((await check(v.pid, true)).text) as FdReport[];
  expect(json.find((r) => r.fd === 3)).toMatchObject({ pid: v.pid, verdict: 'refused', kind: '' });
  expect(json.filter((r) => r.fd <= 2).map((r) => r.verdict)).toEqual(['saved', 'saved', 'saved']);
  assertRunningUntraced(v.pid, 'the io_uring holder after the check');
  await waitForProgress(v.workdir, readProgress(v.workdir) ?? 0, 'the io_uring holder after the check', 2);
  expect(await requestCheck(v.workdir)).toBe('PASS');
});

test('an inotify with an unread event queued is refused, exit 1; the event is still there for the program', async () => {
  const v = await startFilesVictim('inotify-queued');
  const table = await check(v.pid, false);
  expect(table.code).toBe(1);
  expect(table.text).toMatch(/\b3\s+anon_inode:inotify\s+inotify\s+refused\s+\d+ bytes of events are queued unread/);
  expect(await requestCheck(v.workdir)).toBe('PASS');
});

test('eventfds are saved with their counters; a stdout pipe read outside the tree is external; exit 0', async () => {
  const e = await startFilesVictim('eventfd-holder');
  const reports = JSON.parse((await check(e.pid, true)).text) as FdReport[];
  expect(reports.filter((r) => r.kind === 'eventfd').map((r) => [r.fd, r.verdict, r.note])).toEqual([
    [3, 'saved', 'counter 4294967301'],
    [4, 'saved', 'counter 3'],
  ]);
  const p = await startWithStdoutPipe('stdout-pipe');
  const table = await check(p.pid, false);
  expect(table.code).toBe(0);
  expect(table.text).toMatch(/\b1\s+pipe:\[\d+\]\s+pipe\s+external\s+also held by pid \d+, outside the tree/);
  expect(table.text).toMatch(/every object can be saved/);
});

test('a unix socket connected to a process outside the tree is refused, naming who holds its peer; exit 1', async () => {
  await withOutsideUnixClient(async (v) => {
    const table = await check(v.pid, false);
    expect(table.code).toBe(1);
    expect(table.text).toMatch(new RegExp(`\\b3\\s+socket:\\[\\d+\\]\\s+unix\\s+refused\\s+connected to socket:\\[\\d+\\], held by pid ${process.pid}, outside the dumped tree`));
    expect(table.text).toMatch(/1 object cannot be saved/);
    assertRunningUntraced(v.pid, 'the unix client after the check');
  });
});
