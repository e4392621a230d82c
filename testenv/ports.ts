/** Free loopback TCP ports, so parallel test runs (and a developer's own cluster) never collide. */
import * as net from 'node:net';

function listenOnAnyPort(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (typeof address === 'object' && address) resolve(address.port);
      else reject(new Error('the kernel gave no port'));
    });
  });
}

/**
 * n distinct free ports on 127.0.0.1. They are held open together (so no two are the same) and released
 * on return; another process could take one in the short gap before our server binds it, in which case
 * that server fails to start and its log says so.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => net.createServer());
  try {
    const ports: number[] = [];
    for (const server of servers) ports.push(await listenOnAnyPort(server));
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
