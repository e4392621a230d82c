/**
 * The parasite never harms its host: a victim is infected and cured 100 times (the blob runs, answers a
 * command, is cured); after every cure its registers and XSAVE area are compared with what they were
 * (parasiteRoundTrips), and afterwards its maps, fds, signal state and its own memory checksum (the busy
 * victim recomputes it from a snapshot of its state) are unchanged, and it runs on untraced.
 */
import { parasiteRoundTrips } from '../lib';
import { assertRunningUntraced, cleanup, requestCheck, snapshot, startVictim, waitForCpu } from './harness';

afterEach(cleanup);

test('infect and cure a busy victim 100 times: registers, XSAVE, maps, fds and memory unchanged', async () => {
  const v = await startVictim('busy');
  await waitForCpu(v.pid, 'the busy victim');
  const before = snapshot(v.pid);
  const check = await parasiteRoundTrips(v.pid, 100);
  expect(check).toEqual({ iterations: 100, regsChanged: 0, xsaveChanged: 0, wrongPid: 0 });
  expect(snapshot(v.pid)).toEqual(before);
  assertRunningUntraced(v.pid, 'the busy victim after 100 infections');
  await waitForCpu(v.pid, 'the busy victim after 100 infections');
  expect(await requestCheck(v.workdir)).toBe('PASS');
}, 120000);

test('the round-trip check itself fails on a task that is gone', async () => {
  await expect(parasiteRoundTrips(4194303, 1)).rejects.toMatchObject({ code: 'ESRCH' });
});
