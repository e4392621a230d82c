/**
 * A real Go program: a net/http server built here by the Go toolchain (victims/go-http-counter, standard
 * library only; runtimes.ts caches the build), its state in a map under a mutex, built both the ordinary
 * way (cgo: linked with glibc, whose threads register rseq) and static (CGO_ENABLED=0). The Go runtime
 * holds a dozen threads, an alternate signal stack per thread (SIGURG preemption), the netpoller's epoll
 * and eventfd, and its timers. Checkpointed and killed, or with --leave-running under a client
 * that never pauses, then restored on new stdout/stderr pipes: it answers with its map intact, its ticker
 * still fires and its garbage collector still runs (every thread stopped and started again).
 */
import * as fs from 'fs';
import { cleanup } from './harness';
import { goHttpCounter } from './runtimes';
import { expectRuntimeAlive, killCycle, leaveRunningCycle, squaresProtocol } from './server-cycles';
import { cliCheck, startServer, verdicts } from './servers';

jest.setTimeout(120_000);
afterEach(cleanup);

describe.each([
  ['linked with glibc (cgo)', true],
  ['static (CGO_ENABLED=0)', false],
])('go net/http %s', (_how, cgo) => {
  let server: string;
  beforeAll(() => {
    server = goHttpCounter(cgo);  // a first build takes about a minute
  }, 600_000);

  test('dump --check says every object is saved, the stdout pipe external', async () => {
    const s = await startServer('go-http', [server]);
    const { code, table, reports } = await cliCheck(s.pid);
    expect(code).toBe(0);
    expect(table).toMatch(/every object can be saved/);
    expect(verdicts(reports)).toEqual(['0 devnull saved', '1 pipe external', '2 pipe external', 'epoll saved', 'eventfd saved', 'socket saved']);
    expect(reports.find((r) => r.kind === 'epoll')?.note).toBe('2 targets');
  });

  test('checkpointed, killed, restored on new stdio pipes; its map, ticker and GC work', async () => {
    const s = await startServer('go-http', [server]);
    expect(fs.readdirSync(`/proc/${s.pid}/task`).length).toBeGreaterThanOrEqual(10);
    const r = await killCycle(s, squaresProtocol);
    try {
      await expectRuntimeAlive(s.port, r.last);
    } finally {
      r.out.close();
    }
  });

  test('--leave-running: serves on during and after the dump; restored after a kill with the state of the dump', async () => {
    const s = await startServer('go-http', [server]);
    const r = await leaveRunningCycle(s, squaresProtocol);
    try {
      await expectRuntimeAlive(s.port, r.last);
    } finally {
      r.out.close();
    }
  });
});
