/**
 * A server whose children come and go (PostgreSQL's backend per connection, a CGI, a shell running
 * commands) has one exiting at almost any moment. A child met mid-exit cannot be stopped (PTRACE_SEIZE
 * says EPERM) and, once its stopped parent cannot reap it, is a zombie no restore can re-create. The
 * dump lets the tree run again, waits for the parent to reap that child and stops the tree anew; only
 * a zombie its parent never reaps is refused, by name.
 */
import { dumpProcess } from '../../checkpoint';
import { cleanup, isAlive, makeTempDir, procState, startProgram } from './harness';

jest.setTimeout(60_000);
afterEach(cleanup);

// A parent that forks a child living ~2 ms, reaps it, and does it again, for good.
const CHURN = `
import os, sys, time
os.closerange(3, 4096)
open(os.path.join(sys.argv[1], 'ready'), 'w').write(str(os.getpid()))
while True:
    pid = os.fork()
    if pid == 0:
        time.sleep(0.002)
        os._exit(0)
    os.waitpid(pid, 0)
`;

// A parent that never reaps its one child.
const NEGLECT = `
import os, sys, time
os.closerange(3, 4096)
if os.fork() == 0:
    os._exit(3)
open(os.path.join(sys.argv[1], 'ready'), 'w').write(str(os.getpid()))
while True: time.sleep(1)
`;

test('a tree whose children keep exiting is dumped: each freeze that meets a child mid-exit is undone and tried again', async () => {
  const v = await startProgram('churn', '/usr/bin/python3', ['-c', CHURN]);
  for (let i = 0; i < 8; i++) {
    const s = await dumpProcess({ pid: v.pid, dir: makeTempDir('img-churn'), leaveRunning: true });
    expect(s.tasks).toBeGreaterThanOrEqual(1);
    expect(isAlive(v.pid)).toBe(true);
    expect(procState(v.pid)).not.toBe('T');
  }
});

test('a zombie its parent never reaps is refused by name, and the parent runs on', async () => {
  const v = await startProgram('neglect', '/usr/bin/python3', ['-c', NEGLECT]);
  await expect(dumpProcess({ pid: v.pid, dir: makeTempDir('img-neglect') })).rejects.toThrow(/is a zombie its parent has not reaped/);
  expect(isAlive(v.pid)).toBe(true);
  expect(['S', 'R']).toContain(procState(v.pid));
});
