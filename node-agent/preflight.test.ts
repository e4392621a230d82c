/** The preflight's decision and message, over given reports (the real check is in preflight.integration.test.ts). */
import type { FdReport } from '../checkpoint';
import { MAX_LISTED, preflightContainers, refusalMessage } from './preflight';
import { WorkError } from './work-error';

const fd = (pid: number, n: number, verdict: FdReport['verdict'], object = `/tmp/f${n}`, kind = 'reg', note = ''): FdReport => ({ pid, fd: n, object, kind, verdict, note });
const ring = (pid: number, n: number): FdReport => fd(pid, n, 'refused', 'anon_inode:[io_uring]', '', 'io_uring instance: not supported');

test('nothing refused: passes, and every PID of every container was checked', async () => {
  const asked: number[] = [];
  const check = async (pid: number): Promise<FdReport[]> => {
    asked.push(pid);
    return [fd(pid, 0, 'saved'), fd(pid, 1, 'external', 'pipe:[7]', 'pipe')];
  };
  await expect(preflightContainers([{ name: 'a', pids: [10, 11] }, { name: 'b', pids: [20] }], check)).resolves.toBeUndefined();
  expect(asked).toEqual([10, 11, 20]);
});

test('a refused object: WorkError Unsupported naming container, pid, fd, object, kind and why; a descendant seen twice is listed once', async () => {
  // pid 10's report includes its child 11; pid 11's report repeats it.
  const reports: Record<number, FdReport[]> = { 10: [fd(10, 0, 'saved'), ring(11, 3)], 11: [ring(11, 3)] };
  const err = await preflightContainers([{ name: 'app', pids: [10, 11] }], async (pid) => reports[pid]).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkError);
  expect((err as WorkError).reason).toBe('Unsupported');
  expect((err as WorkError).code).toBe('EUNSUPPORTED');
  expect((err as WorkError).message).toBe('preflight: 1 object cannot be saved, nothing was frozen: container app: pid 11 fd 3 anon_inode:[io_uring] (kind -): io_uring instance: not supported');
});

test('many refusals: the first MAX_LISTED listed, the rest counted', () => {
  const refused = Array.from({ length: MAX_LISTED + 3 }, (_, i) => ({ container: 'c', report: ring(5, i) }));
  const msg = refusalMessage(refused) as string;
  expect(msg).toMatch(new RegExp(`^preflight: ${MAX_LISTED + 3} objects cannot be saved`));
  expect(msg.match(/anon_inode:\[io_uring\]/g)).toHaveLength(MAX_LISTED);
  expect(msg).toMatch(/; and 3 more$/);
  expect(refusalMessage([])).toBeUndefined();
});
