/**
 * A minimal HTTPS client for the test API server that authenticates with a kubeconfig's client
 * certificate, so a test can assert the real server's status codes (401, 403, 422 ...) and bodies.
 */
import * as https from 'node:https';
import { promises as fs } from 'node:fs';
import { readKubeconfig } from './kubeconfig';

export interface ApiResponse {
  status: number;
  /** Parsed JSON when the server sent JSON, else the raw text. */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function apiRequest(kubeconfigPath: string, method: string, urlPath: string, body?: unknown): Promise<ApiResponse> {
  const kc = await readKubeconfig(kubeconfigPath);
  const [ca, cert, key] = await Promise.all([fs.readFile(kc.caPath), fs.readFile(kc.certPath), fs.readFile(kc.keyPath)]);
  return tlsRequest({ server: kc.server, ca, cert, key }, method, urlPath, body);
}

export interface TlsIdentity {
  server: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export function tlsRequest(id: TlsIdentity, method: string, urlPath: string, body?: unknown, timeoutMs = 10000): Promise<ApiResponse> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(urlPath, id.server),
      {
        method,
        ca: id.ca,
        cert: id.cert,
        key: id.key,
        timeout: timeoutMs,
        headers: { Accept: 'application/json', ...(payload ? { 'Content-Type': 'application/json' } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          if (/json/.test(res.headers['content-type'] ?? '')) {
            try {
              parsed = JSON.parse(text);
            } catch {
              // keep the text
            }
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
