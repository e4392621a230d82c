/** /metrics (Prometheus text format) and /healthz (200 once the agent has listed its work, else 503). */
import * as http from 'http';
import type { Registry } from 'prom-client';

export async function startHttpServer(port: number, host: string, registry: Registry, ready: () => boolean): Promise<http.Server & { port: number }> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (url === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else if (url === '/healthz' || url === '/readyz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'not synced\n');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  return Object.assign(server, { port: typeof addr === 'object' && addr ? addr.port : port });
}
