/**
 * A real program nobody here wrote the machinery of: Node.js (libuv's epolls, eventfds and pipes, eight
 * threads) running an HTTP server whose state is in a closure and in a worker_threads worker, started
 * as a user starts it with stdout and stderr on a pipe read outside its tree. Checkpointed and killed, or
 * with --leave-running under a client that never pauses, and restored with its output on a new pipe: it
 * answers with both counts going on from where they were at the dump.
 */
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, VICTIMS_DIR } from './harness';
import { killCycle, leaveRunningCycle, Protocol } from './server-cycles';
import { cliCheck, httpGet, startServer, verdicts } from './servers';

jest.setTimeout(90_000);
afterEach(cleanup);

const ARGV = [process.execPath, path.join(VICTIMS_DIR, 'node-http-counter.js')];

/** "<hits> <worker total>": the worker adds 10 per hit. */
const protocol: Protocol = {
  ask: async (port) => {
    const text = await httpGet(port);
    const [hits, total] = text.split(' ').map(Number);
    if (total !== 10 * hits) throw new Error(`answer "${text}": the worker's total is not 10 per hit`);
    return hits;
  },
  logged: (n) => `hit ${n}\n`,
};

test('node http: dump --check says every object is saved, the stdout pipe external', async () => {
  const s = await startServer('node-http', ARGV);
  const { code, table, reports } = await cliCheck(s.pid);
  expect(code).toBe(0);
  expect(table).toMatch(/every object can be saved/);
  const rest = verdicts(reports).slice(3);
  expect(verdicts(reports).slice(0, 3)).toEqual(['0 devnull saved', '1 pipe external', '2 pipe external']);
  // libuv: an epoll and an eventfd per loop (the main one and the worker's), pipes among its threads;
  // node keeps a /dev/null open too.
  expect(new Set(rest)).toEqual(new Set(['devnull saved', 'epoll saved', 'eventfd saved', 'pipe saved', 'socket saved']));
  expect(rest.filter((v) => v === 'epoll saved').length).toBeGreaterThanOrEqual(2);
});

test('node http with a worker thread: checkpointed, killed, restored on new stdio pipes; closure and worker counts go on', async () => {
  const s = await startServer('node-http', ARGV);
  expect(fs.readdirSync(`/proc/${s.pid}/task`).length).toBeGreaterThan(2); // libuv's pool and the worker
  const r = await killCycle(s, protocol);
  r.out.close();
});

test('node http --leave-running: serves on during and after the dump; restored after a kill with the counts of the dump', async () => {
  const s = await startServer('node-http', ARGV);
  const r = await leaveRunningCycle(s, protocol);
  r.out.close();
});
