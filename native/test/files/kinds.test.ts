/**
 * One victim per kind of fd of the file layer (native/src/core/files/<kind>.cc, images/files/<kind>.ts):
 * dumped, killed, restored, and then checking its own fds' state (victims in native/test/files).
 */
import { cleanup, dumpRestoreCheck, readFds } from '../harness';
import { startFilesVictim } from './harness';

jest.setTimeout(60_000);
afterEach(cleanup);

test('eventfd: a 33-bit counter and a semaphore with 3 come back with their values and flags', async () => {
  const v = await startFilesVictim('eventfd-holder');
  const fds = readFds(v.pid);
  const { restored, result } = await dumpRestoreCheck(v, {
    beforeCheck: (r) => expect(readFds(r.pid)).toEqual(fds),
  });
  expect(restored.pid).toBeGreaterThan(0);
  expect(result).toBe('PASS');
});
