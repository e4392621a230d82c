/**
 * nginx from Debian, started as a container starts it (`daemon off`, the master as root, two workers as
 * nobody, its error log on stderr), with stdout and stderr on a pipe read by a process outside its tree.
 * Master and workers share the listening socket (one open file in every process), each worker's
 * socketpair channel (one end in the master, the other in the worker, and the master's ends passed to
 * the other workers), and the log pipe; each worker has its epoll and eventfd. `cryopod dump --check`
 * names each; after dump, kill and restore (output on a new pipe) it serves a request, and a worker's
 * error reaches the new stderr.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { dumpProcess, FdReport, restoreProcess } from '../../checkpoint';
import { freePorts } from '../../testenv/ports';
import { cliCheck } from './cli-check';
import { FifoReader } from './files/harness';
import { cleanup, makeTempDir, readFileOrUndefined, waitFor } from './harness';
import { startBehindPipe, trackTree, treeOf, waitReaped } from './real-servers';

jest.setTimeout(120_000);
afterEach(cleanup);

function get(port: number, file: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: file, timeout: 5000, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject)
      .on('timeout', function (this: http.ClientRequest) {
        this.destroy(new Error('timed out'));
      });
  });
}

const statusUid = (pid: number): number => Number(/^Uid:\s+(\d+)/m.exec(readFileOrUndefined(`/proc/${pid}/status`) ?? '')?.[1]);

test('nginx (master + 2 workers: shared listener, socketpair channels, epoll, eventfd) serves after dump, kill and restore', async () => {
  const work = makeTempDir('nginx');
  fs.chmodSync(work, 0o755);
  fs.mkdirSync(path.join(work, 'html'), { mode: 0o755 });
  fs.writeFileSync(path.join(work, 'html', 'index.html'), 'hello from before the checkpoint\n', { mode: 0o644 });
  const [port] = await freePorts(1);
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${path.join(work, t)};`).join(' ');
  fs.writeFileSync(
    path.join(work, 'nginx.conf'),
    `daemon off;\nworker_processes 2;\npid ${path.join(work, 'nginx.pid')};\nerror_log stderr;\n` +
      `events { worker_connections 64; }\n` +
      `http { access_log off; ${temp} server { listen 127.0.0.1:${port}; root ${path.join(work, 'html')}; } }\n`,
  );
  const before = path.join(work, 'before.log');
  await startBehindPipe(['/usr/sbin/nginx', '-p', work, '-e', 'stderr', '-c', path.join(work, 'nginx.conf')], before, { cwd: work });
  const master = await waitFor(() => Number(readFileOrUndefined(path.join(work, 'nginx.pid'))?.trim()) || undefined, 20_000, 'nginx.pid');
  trackTree(master);
  const tree = await waitFor(() => (treeOf(master).length === 3 ? treeOf(master) : undefined), 20_000, 'nginx with its two workers');
  trackTree(master);
  expect((await get(port, '/')).body).toBe('hello from before the checkpoint\n');
  const [, ...workers] = tree;
  expect(workers.map(statusUid)).toEqual([65534, 65534]);

  const table = await cliCheck(master, false);
  expect(table.code).toBe(0);
  expect(table.text).toMatch(new RegExp(`^${workers[0]}\\s+\\d+\\s+socket:\\[\\d+\\]\\s+socket\\s+saved\\s+.*one open file with pid ${master} fd \\d+`, 'm'));
  expect(table.text).toMatch(/\nevery object can be saved\s*$/);
  const reports = JSON.parse((await cliCheck(master, true)).text) as FdReport[];
  expect(reports.filter((r) => r.verdict === 'refused')).toEqual([]);
  const listen = reports.filter((r) => r.kind === 'socket');
  expect(listen.map((r) => r.pid).sort()).toEqual([...tree].sort());
  for (const r of listen.filter((x) => x.pid !== master)) expect(r.note).toContain(`one open file with pid ${master} fd ${listen.find((x) => x.pid === master)!.fd}`);
  const channels = reports.filter((r) => r.kind === 'unix');
  // Each worker's own end is connected to the master's (which keeps both ends of every channel).
  for (const w of workers) expect(channels.some((r) => r.pid === w && r.note.startsWith(`connected to pid ${master} fd `) && r.note.includes('inside the tree'))).toBe(true);
  for (const w of workers) expect(reports.filter((r) => r.pid === w).map((r) => r.kind)).toEqual(expect.arrayContaining(['epoll', 'eventfd', 'unix', 'socket']));
  expect(reports.filter((r) => r.fd === 2).map((r) => r.verdict)).toEqual(tree.map(() => 'external'));

  const images = makeTempDir('img-nginx');
  const s = await dumpProcess({ pid: master, dir: images });
  expect(s.tasks).toBe(3);
  await waitReaped(tree, 'the dumped nginx processes');
  // crit reads the images: the listener is one file_entry that the master's and both workers' fdinfo refer to.
  const fdinfo = (n: number): Array<{ id: number; type: string }> =>
    JSON.parse(execFileSync('/usr/bin/crit', ['decode', '-i', path.join(images, `fdinfo-${n}.img`)], { encoding: 'utf8' })).entries;
  const listenerIds = [1, 2, 3].map((n) => fdinfo(n).filter((e) => e.type === 'INETSK').map((e) => e.id));
  expect(listenerIds[0]).toHaveLength(1);
  expect(listenerIds).toEqual([listenerIds[0], listenerIds[0], listenerIds[0]]);
  execFileSync('/usr/bin/crit', ['decode', '-i', path.join(images, 'files.img')], { stdio: 'ignore' });

  const out = new FifoReader(path.join(work, 'after'));
  try {
    const r = await restoreProcess({ dir: images, inheritFds: [{ fd: 1, path: out.path }, { fd: 2, path: out.path }] });
    expect(r.pid).toBe(master);
    trackTree(master);
    expect(treeOf(master).sort()).toEqual([...tree].sort());
    expect(workers.map(statusUid)).toEqual([65534, 65534]);
    expect(statusUid(master)).toBe(0);
    for (let i = 0; i < 4; i++) expect((await get(port, '/')).body).toBe('hello from before the checkpoint\n');
    expect((await get(port, '/not-there')).status).toBe(404);
    await waitFor(() => (out.read().includes('not-there') ? true : undefined), 10_000, "a worker's error on the new stderr");
    // The master's channel to its workers works: a reload (SIGHUP) starts new workers and retires the old ones over it.
    process.kill(master, 'SIGHUP');
    await waitFor(() => {
      const now = treeOf(master);
      trackTree(master);
      return now.length === 3 && !now.some((p) => workers.includes(p)) ? true : undefined;
    }, 20_000, 'the old workers replaced after a reload');
    expect((await get(port, '/')).body).toBe('hello from before the checkpoint\n');
  } finally {
    out.close();
  }
});
