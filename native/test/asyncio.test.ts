/**
 * A real program nobody here wrote the machinery of: Python's asyncio event loop (epoll, its wakeup
 * socketpair, a listening socket, an accepted connection), started as a user starts a server, with
 * stdout and stderr on a pipe read by a process outside its tree (as in a container). It is
 * checkpointed with a client connected, killed and restored with its output on a new pipe: the client
 * reconnects and the count kept in the handler's closure goes on; the old connection comes back reset,
 * which the server logs.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { dumpProcess, restoreProcess } from '../../checkpoint';
import { readCheckpoint } from '../../images';
import { ask, connect } from './line-client';
import { FifoReader } from './files/harness';
import { cleanup, isAlive, makeTempDir, readFileOrUndefined, trackPid, waitFor, waitGone, VICTIMS_DIR } from './harness';
import { CLEAN_EXEC } from './namespaces';
import { leaveRunningCycle, Protocol } from './server-cycles';
import { cliCheck, startServer, verdicts } from './servers';

jest.setTimeout(90_000);
afterEach(cleanup);

const ARGV = ['/usr/bin/python3', path.join(VICTIMS_DIR, 'asyncio-counter.py')];

/** One line on a fresh connection: the answer is the count of lines served. */
const protocol: Protocol = {
  ask: async (port) => {
    const c = await connect(port);
    try {
      return Number(await ask(c, 'x'));
    } finally {
      c.destroy();
    }
  },
  logged: (n) => `served ${n}\n`,
};

test('asyncio: dump --check says every object is saved (its wakeup socketpair too), the stdout pipe external', async () => {
  const s = await startServer('asyncio', ARGV);
  const { code, table, reports } = await cliCheck(s.pid);
  expect(code).toBe(0);
  expect(table).toMatch(/every object can be saved/);
  expect(verdicts(reports)).toEqual(['0 devnull saved', '1 pipe external', '2 pipe external', 'epoll saved', 'socket saved', 'unix saved', 'unix saved']);
  expect(reports.filter((r) => r.kind === 'unix').map((r) => r.note)).toEqual([expect.stringMatching(/^connected to fd \d+ of the same process/), expect.stringMatching(/^connected to fd/)]);
});

test('asyncio --leave-running: serves on during and after the dump; restored after a kill with the count of the dump', async () => {
  const s = await startServer('asyncio', ARGV);
  const r = await leaveRunningCycle(s, protocol);
  r.out.close();
});

test('an asyncio server with a client connected is checkpointed, restored on new stdio pipes, and serves on with its count', async () => {
  const workdir = makeTempDir('asyncio');
  const before = path.join(workdir, 'before.log');
  const server = path.join(VICTIMS_DIR, 'asyncio-counter.py');
  const argv = [...CLEAN_EXEC, '/usr/bin/python3', server, workdir].map((a) => `'${a}'`).join(' ');
  const sh = spawn('setsid', ['-f', 'sh', '-c', `exec ${argv} 2>&1 | cat > ${before}`], { stdio: 'ignore', cwd: '/' });
  await new Promise((resolve) => sh.on('exit', resolve));
  const pid = Number(await waitFor(() => readFileOrUndefined(path.join(workdir, 'ready')), 30_000, 'the asyncio server'));
  trackPid(pid);
  const port = Number(fs.readFileSync(path.join(workdir, 'port'), 'utf8'));

  const client = await connect(port);
  expect(await ask(client, 'a')).toBe('1');
  expect(await ask(client, 'b')).toBe('2');
  client.on('error', () => undefined);
  const images = makeTempDir('img-asyncio');
  const s = await dumpProcess({ pid, dir: images });
  expect(s.pagesMethods).toEqual(['parasite']);
  await waitGone(pid, 'the dumped asyncio server');
  const { task } = await readCheckpoint(images);
  const kinds = task.files.map((f) => (f.kind === 'socket' ? `socket:${f.socket!.state}` : f.kind));
  expect(kinds).toEqual(expect.arrayContaining(['epoll', 'unix', 'unix', 'socket:listen', 'socket:connected', 'pipe']));
  // The old reader, outside the tree, got what was written before the checkpoint.
  expect(await waitFor(() => (readFileOrUndefined(before) ?? '').includes('served 2') || undefined, 10_000, 'served 2 in before.log')).toBe(true);

  const out = new FifoReader(path.join(workdir, 'after'));
  try {
    const r = await restoreProcess({ dir: images, inheritFds: [{ fd: 1, path: out.path }, { fd: 2, path: out.path }] });
    trackPid(r.pid);
    const again = await connect(port);
    try {
      expect(await ask(again, 'c')).toBe('3');
    } finally {
      again.destroy();
    }
    await waitFor(() => (out.read().includes('served 3') ? true : undefined), 10_000, 'served 3 on the new stdout');
    await waitFor(() => (out.read().includes('connection reset') ? true : undefined), 10_000, 'the old connection reset, logged');
    expect(isAlive(r.pid)).toBe(true);
  } finally {
    out.close();
  }
});
