/**
 * Connections waiting in a listener's backlog when the checkpoint is taken. The old kernel's sockets
 * take them along, but the program may already have been told they were there (poll, epoll or select
 * said the listener was readable just before the freeze; PostgreSQL's postmaster then calls a blocking
 * accept()). A restore that drops them leaves such a program blocked in accept() for good, deaf to
 * every later client. Cryopod records how many were waiting (TCP_INFO on a TCP listener, sock_diag on
 * a unix one) and restores each as a connection that closes at once: the program accepts it and reads
 * end-of-file, as from a client that gave up.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { dumpProcess, restoreProcess } from '../../checkpoint';
import { readCheckpoint } from '../../images';
import { cleanup, startProgram, trackPid, waitFor, waitGone } from './harness';

jest.setTimeout(60_000);
afterEach(cleanup);

// Listens on TCP and on a unix path, says so, and accepts nothing until the `go` file appears; then
// accepts two connections on each and writes what each one read first ("eof" for nothing).
const SERVER = `
import os, socket, sys, time
os.closerange(3, 4096)  # as a daemon does: nothing inherited from the test runner
work = sys.argv[1]
tcp = socket.socket(); tcp.bind(('127.0.0.1', 0)); tcp.listen(8)
unix = socket.socket(socket.AF_UNIX); unix.bind(os.path.join(work, 'sock')); unix.listen(8)
open(os.path.join(work, 'port'), 'w').write(str(tcp.getsockname()[1]))
open(os.path.join(work, 'ready'), 'w').write(str(os.getpid()))
while not os.path.exists(os.path.join(work, 'go')): time.sleep(0.01)
seen = []
for name, s in (('tcp', tcp), ('unix', unix)):
    for _ in range(2):
        c, _ = s.accept()
        seen.append(name + ' ' + (c.recv(16).decode() or 'eof'))
        c.close()
open(os.path.join(work, 'seen.tmp'), 'w').write(','.join(seen)); os.rename(os.path.join(work, 'seen.tmp'), os.path.join(work, 'seen'))
while True: time.sleep(1)
`;

function connected(socket: net.Socket): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

test('connections pending in a TCP and a unix listener come back as ones that close at once: the program accepts them and blocks on nothing', async () => {
  const v = await startProgram('pending', '/usr/bin/python3', ['-c', SERVER]);
  const port = Number(fs.readFileSync(path.join(v.workdir, 'port'), 'utf8'));
  const sock = path.join(v.workdir, 'sock');
  const clients = await Promise.all([
    connected(net.connect(port, '127.0.0.1')),
    connected(net.connect(port, '127.0.0.1')),
    connected(net.connect(sock)),
    connected(net.connect(sock)),
  ]);
  for (const c of clients) c.on('error', () => undefined);  // the killed server resets them
  try {
    const images = path.join(v.workdir, 'images');
    fs.mkdirSync(images);
    await dumpProcess({ pid: v.pid, dir: images });
    await waitGone(v.pid, 'the dumped server');
    const { task } = await readCheckpoint(images);
    const tcp = task.files.find((f) => f.kind === 'socket' && f.socket?.state === 'listen');
    expect(tcp?.socket?.pending).toBe(2);
    const unix = task.files.find((f) => f.kind === 'unix' && f.state?.num.listening);
    expect(Number(unix?.state?.num.pending)).toBe(2);

    const r = await restoreProcess({ dir: images });
    trackPid(r.pid);
    fs.writeFileSync(path.join(v.workdir, 'go'), '');
    const seen = await waitFor(() => fs.existsSync(path.join(v.workdir, 'seen')) && fs.readFileSync(path.join(v.workdir, 'seen'), 'utf8'), 10_000,
      'the restored server to accept the two connections waiting on each listener (it blocks in accept() if they were dropped)');
    expect(seen).toBe('tcp eof,tcp eof,unix eof,unix eof');
  } finally {
    for (const c of clients) c.destroy();
  }
});
