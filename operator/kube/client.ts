/**
 * A small Kubernetes REST client: client-node's KubeConfig does the part that is hard to get right
 * (kubeconfig files, in-cluster service-account tokens, exec plugins, TLS), and plain node:https does the
 * requests. We keep the raw HTTP on purpose: the reconcilers need exact status codes (404, 409, 410, 422),
 * the three patch content types, and streaming watches they can restart themselves.
 */
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export type PatchType = 'merge' | 'json' | 'strategic';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

/** An HTTP error answer of the API server, with its status code and the Status body's reason. */
export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly code: number,
    readonly reason: string,
    readonly body: unknown,
  ) {
    const message = (body as { message?: string } | undefined)?.message ?? String(body).slice(0, 300);
    super(`${method} ${path}: ${code} ${reason}: ${message}`);
    this.name = 'ApiError';
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof ApiError && e.code === 404;
export const isConflict = (e: unknown): boolean => e instanceof ApiError && e.code === 409;
export const isAlreadyExists = (e: unknown): boolean => e instanceof ApiError && e.code === 409 && e.reason === 'AlreadyExists';

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export class KubeClient {
  readonly server: string;

  constructor(readonly kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = cluster.server;
  }

  /** Options for one HTTPS request with this identity (certificates, token headers). */
  async httpsOptions(method: string, path: string, headers: Record<string, string>): Promise<https.RequestOptions> {
    const opts: https.RequestOptions = { method, headers: { Accept: 'application/json', ...headers } };
    await this.kc.applyToHTTPSOptions(opts);
    const url = new URL(path, this.server);
    return { ...opts, protocol: url.protocol, hostname: url.hostname, port: url.port, path: url.pathname + url.search };
  }

  /** One request; resolves the parsed JSON body of a 2xx answer, throws ApiError otherwise. */
  async request<T = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
    const headers: Record<string, string> = payload ? { 'Content-Type': o.contentType ?? 'application/json' } : {};
    const opts = await this.httpsOptions(method, path, headers);
    return new Promise<T>((resolve, reject) => {
      const req = https.request({ ...opts, timeout: o.timeoutMs ?? 30000, signal: o.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON (a proxy's error page): keep the text for the message
          }
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) resolve(body as T);
          else reject(new ApiError(method, path, code, (body as { reason?: string } | undefined)?.reason ?? res.statusMessage ?? '', body));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in ${o.timeoutMs ?? 30000} ms`)));
      req.on('error', (err) => reject(new Error(`${method} ${path}: ${err.message}`, { cause: err })));
      req.end(payload);
    });
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  create<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }
  patch<T>(path: string, body: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: PATCH_CONTENT_TYPE[type] });
  }
  delete<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('DELETE', path, { body });
  }
}
