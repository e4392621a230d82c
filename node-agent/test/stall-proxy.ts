/**
 * Integration-test helper: a TCP proxy on loopback in front of a real server (MinIO) that forwards
 * everything until `stallAfter` bytes went towards the server, then holds every byte in both directions
 * (new connections too) until pass() is called: an upload frozen mid-way at a point the test knows,
 * without a hook in the code under test.
 */
import * as net from 'node:net';
import { freePorts } from '../../testenv/ports';

export interface StallProxy {
  endpoint: string;
  /** Bytes forwarded towards the server so far. */
  readonly upstreamBytes: number;
  readonly stalled: boolean;
  /** Forward everything from now on (held bytes are dropped with their connections' clients, if gone). */
  pass(): void;
  close(): Promise<void>;
}

export async function startStallProxy(target: { host: string; port: number }, stallAfter: number): Promise<StallProxy> {
  const [port] = await freePorts(1);
  let upstream = 0;
  let stalled = false;
  let passing = false;
  const sockets = new Set<net.Socket>();
  const held: Array<() => void> = [];

  const server = net.createServer((client) => {
    const server = net.connect(target.port, target.host);
    for (const s of [client, server]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
    const forward = (from: net.Socket, to: net.Socket, counts: boolean): void => {
      from.on('data', (chunk: Buffer) => {
        const send = (): void => {
          if (!to.destroyed) to.write(chunk);
        };
        if (stalled && !passing) {
          from.pause();
          held.push(() => {
            send();
            from.resume();
          });
          return;
        }
        if (counts && !passing) {
          upstream += chunk.length;
          if (upstream >= stallAfter) stalled = true;
        }
        send();
      });
    };
    forward(client, server, true);
    forward(server, client, false);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get upstreamBytes() {
      return upstream;
    },
    get stalled() {
      return stalled;
    },
    pass() {
      passing = true;
      for (const f of held.splice(0)) f();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
