/** /metrics (Prometheus text) and /healthz (the watches have listed recently) on one small HTTP server. */
import * as http from 'node:http';
import type { Registry } from 'prom-client';

export interface HealthSource {
  healthy(): { ok: boolean; detail: string };
}

export async function startHttp(port: number, registry: Registry, health: HealthSource, host = '0.0.0.0'): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    void (async () => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'Content-Type': registry.contentType });
        res.end(await registry.metrics());
      } else if (req.url === '/healthz' || req.url === '/readyz') {
        const h = health.healthy();
        res.writeHead(h.ok ? 200 : 503, { 'Content-Type': 'text/plain' });
        res.end(h.detail + '\n');
      } else {
        res.writeHead(404);
        res.end();
      }
    })().catch((err) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
