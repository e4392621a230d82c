/**
 * A real program nobody here wrote the machinery of: Node.js (libuv's epolls, eventfds and pipes, eight
 * threads) running an HTTP server whose state is in a closure and in a worker_threads worker, started
 * as a user starts it with stdout and stderr on a pipe read outside its tree. Checkpointed, killed and
 * restored with its output on a new pipe, it answers with both counts going on.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { dumpProcess, restoreProcess } from '../../checkpoint';
import { FifoReader } from './files/harness';
import { cleanup, makeTempDir, readFileOrUndefined, trackPid, waitFor, waitGone, VICTIMS_DIR } from './harness';
import { CLEAN_EXEC } from './namespaces';

jest.setTimeout(90_000);
afterEach(cleanup);

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(body.trim()));
      })
      .on('error', reject);
  });
}

test('a Node.js HTTP server with a worker thread is checkpointed, restored on new stdio pipes, and its closure and worker counts go on', async () => {
  const workdir = makeTempDir('node-http');
  const before = path.join(workdir, 'before.log');
  const argv = [...CLEAN_EXEC, process.execPath, path.join(VICTIMS_DIR, 'node-http-counter.js'), workdir].map((a) => `'${a}'`).join(' ');
  const sh = spawn('setsid', ['-f', 'sh', '-c', `exec ${argv} 2>&1 | cat > ${before}`], { stdio: 'ignore', cwd: '/' });
  await new Promise((resolve) => sh.on('exit', resolve));
  const pid = Number(await waitFor(() => readFileOrUndefined(path.join(workdir, 'ready')), 30_000, 'the node server'));
  trackPid(pid);
  const port = Number(fs.readFileSync(path.join(workdir, 'port'), 'utf8'));
  expect(await get(port)).toBe('1 10');
  expect(await get(port)).toBe('2 20');
  expect(fs.readdirSync(`/proc/${pid}/task`).length).toBeGreaterThan(2); // libuv's pool and the worker

  const images = makeTempDir('img-node-http');
  const s = await dumpProcess({ pid, dir: images });
  expect(s.pagesMethods).toEqual(['parasite']);
  await waitGone(pid, 'the dumped node server');
  expect(await waitFor(() => (readFileOrUndefined(before) ?? '').includes('hit 2') || undefined, 10_000, 'hit 2 in before.log')).toBe(true);

  const out = new FifoReader(path.join(workdir, 'after'));
  try {
    const r = await restoreProcess({ dir: images, inheritFds: [{ fd: 1, path: out.path }, { fd: 2, path: out.path }] });
    trackPid(r.pid);
    expect(await get(port)).toBe('3 30');
    expect(await get(port)).toBe('4 40');
    await waitFor(() => (out.read().includes('hit 4') ? true : undefined), 10_000, 'hit 4 on the new stdout');
  } finally {
    out.close();
  }
});
