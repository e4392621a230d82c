/**
 * A process whose unix socket is connected to one outside any tree it roots: a python3 client of a
 * listener this test process holds. For the tests that a dump and `--check` refuse it, naming the holder.
 */
import * as net from 'net';
import * as path from 'path';
import { makeTempDir, startProgram, Victim } from './harness';

const CLIENT = `import socket, sys, time, os
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
open(sys.argv[2] + '/ready', 'w').write(str(os.getpid()))
time.sleep(600)`;

/** Runs `fn` with such a client (tracked for cleanup()); the listener is closed after. */
export async function withOutsideUnixClient(fn: (client: Victim) => Promise<void>): Promise<void> {
  const dir = makeTempDir('unix-outside');
  const sockPath = path.join(dir, 'outside.sock');
  const server = net.createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(sockPath, resolve));
  try {
    await fn(await startProgram('unix-client', '/usr/bin/python3', ['-c', CLIENT, sockPath], { workdir: dir }));
  } finally {
    server.close();
  }
}
