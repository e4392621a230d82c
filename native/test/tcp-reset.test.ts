/**
 * A server with a client connected during the checkpoint (issue 10): the connection cannot survive a
 * restore (the kernel state of the TCP connection is not saved), so the server's socket comes back as
 * one whose peer is gone. The tcp-server victim sees ECONNRESET on its next read of it, as after a
 * network failure; the client, whose connection ended when the server was killed, reconnects and is
 * served by the restored server with its count going on.
 */
import * as fs from 'fs';
import * as path from 'path';
import { dumpProcess, restoreProcess } from '../../checkpoint';
import { readCheckpoint } from '../../images';
import { ask, connect } from './line-client';
import { cleanup, makeTempDir, requestCheck, sleep, startVictim, trackPid, waitGone } from './harness';

jest.setTimeout(60_000);
afterEach(cleanup);



test('a client connected during the checkpoint sees its connection end, reconnects and is served; the server saw a reset', async () => {
  const v = await startVictim('tcp-server');
  const port = Number(fs.readFileSync(path.join(v.workdir, 'port'), 'utf8'));
  const client = await connect(port);
  expect(await ask(client, 'a')).toBe('1 0');
  const ended = new Promise<void>((resolve) => client.once('close', () => resolve()));
  client.on('error', () => undefined);  // a reset is what the client may see

  const images = makeTempDir('img-tcp');
  await dumpProcess({ pid: v.pid, dir: images });
  const { task } = await readCheckpoint(images);
  expect(task.files.filter((f) => f.kind === 'socket').map((f) => f.socket!.state).sort()).toEqual(['connected', 'listen']);
  await waitGone(v.pid, 'the dumped server');
  await ended; // the killed server's side closed the connection

  const r = await restoreProcess({ dir: images });
  trackPid(r.pid);
  const again = await connect(port);
  try {
    // The server takes the reset of its old connection on its next poll: ask until it has.
    const deadline = Date.now() + 10_000;
    let reply = await ask(again, 'b');
    while (!reply.endsWith(' 1') && Date.now() < deadline) {
      await sleep(50);
      reply = await ask(again, 'b');
    }
    expect(reply).toMatch(/ 1$/);
    const [served] = reply.split(' ').map(Number);
    expect(served).toBeGreaterThanOrEqual(2); // the count went on from the checkpoint
  } finally {
    again.destroy();
  }
  expect(await requestCheck(v.workdir)).toBe('PASS');
});
