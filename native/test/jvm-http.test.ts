/**
 * A real JVM (OpenJDK 17, started the ordinary way: `java -cp <dir> JvmHttpCounter`): a
 * com.sun.net.httpserver server with its state in a HashMap, compiled by javac here (runtimes.ts caches
 * it). The JVM holds two dozen threads, maps /tmp/hsperfdata_<user>/<pid> MAP_SHARED, runs JIT-compiled
 * code, stops its threads at safepoints by polling pages (SIGSEGV), and keeps a unix socket whose peer
 * has closed. Checkpointed and killed, or with --leave-running under a client that never pauses, then
 * restored on new stdout/stderr pipes: it answers with its map intact, its scheduled executor still
 * fires and System.gc() (a safepoint of every thread) still completes.
 */
import * as fs from 'fs';
import * as os from 'os';
import { cleanup, expectFailure, makeTempDir, waitGone } from './harness';
import { dumpProcess, restoreProcess } from '../../checkpoint';
import { jvmHttpCounter } from './runtimes';
import { expectRuntimeAlive, killCycle, leaveRunningCycle, squaresProtocol } from './server-cycles';
import { cliCheck, startServer, verdicts } from './servers';

jest.setTimeout(120_000);
const started: number[] = [];
afterEach(async () => {
  await cleanup();
  // A killed JVM leaves its perf-data file behind (it removes it only when it exits on its own).
  for (const pid of started.splice(0)) fs.rmSync(perfData(pid), { force: true });
});

let argv: string[];
beforeAll(() => {
  const jvm = jvmHttpCounter();
  argv = [jvm.java, '-cp', jvm.classPath, jvm.main];
}, 300_000);

const perfData = (pid: number): string => `/tmp/hsperfdata_${os.userInfo().username}/${pid}`;

test('jvm: dump --check says every object is saved (the closed-peer unix socket too), the stdout pipe external', async () => {
  const s = await startServer('jvm-http', argv);
  started.push(s.pid);
  const { code, table, reports } = await cliCheck(s.pid);
  expect(code).toBe(0);
  expect(table).toMatch(/every object can be saved/);
  expect(verdicts(reports)).toEqual(['0 devnull saved', '1 pipe external', '2 pipe external', 'epoll saved', 'eventfd saved', 'reg saved', 'socket saved', 'unix saved']);
  expect(reports.find((r) => r.kind === 'unix')?.note).toMatch(/peer that has closed/);
  const shared = fs.readFileSync(`/proc/${s.pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith(perfData(s.pid)));
  expect(shared).toMatch(/ rw-s /);
});

test('jvm: checkpointed, killed, restored on new stdio pipes; its map, JIT code, executor and GC work', async () => {
  const s = await startServer('jvm-http', argv);
  started.push(s.pid);
  expect(fs.readdirSync(`/proc/${s.pid}/task`).length).toBeGreaterThan(15);
  const r = await killCycle(s, squaresProtocol);
  try {
    await expectRuntimeAlive(s.port, r.last);
    // Same PID (it was free), so the shared perf-data file it maps is the one it made at start.
    expect(r.pid).toBe(s.pid);
    expect(fs.readFileSync(`/proc/${r.pid}/maps`, 'utf8')).toContain(perfData(s.pid));
  } finally {
    r.out.close();
  }
});

test('jvm --leave-running: serves on during and after the dump (a restore meanwhile is refused: its PID is taken); restored after a kill with the state of the dump', async () => {
  const s = await startServer('jvm-http', argv);
  started.push(s.pid);
  const r = await leaveRunningCycle(s, squaresProtocol, async (images) => {
    // Multi-threaded: only its own PID and TIDs will do, and the original holds them.
    await expectFailure(restoreProcess({ dir: images }), 'EPIDTAKEN', [String(s.pid)]);
  });
  try {
    await expectRuntimeAlive(s.port, r.last);
  } finally {
    r.out.close();
  }
});

test('jvm: when its perf-data file is gone (a JVM that exited on its own removes it), the restore refuses naming it and leaves nothing', async () => {
  const s = await startServer('jvm-http', argv);
  started.push(s.pid);
  const images = makeTempDir('img-jvm-noperf');
  await dumpProcess({ pid: s.pid, dir: images });
  await waitGone(s.pid, 'the dumped JVM');
  fs.rmSync(perfData(s.pid));
  await expectFailure(restoreProcess({ dir: images }), 'ENOENT', [perfData(s.pid)]);
  // The stub it had started under the saved PID was killed: it goes away.
  await waitGone(s.pid, 'the killed restore stub');
  expect(fs.existsSync(perfData(s.pid))).toBe(false);
});
