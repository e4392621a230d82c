/**
 * List-then-watch that never gives up. client-node's informer (ListWatch) stops for good on any watch error
 * other than 410 (client-node src/cache.ts); an operator must not go deaf because the API server restarted.
 * Each cycle lists (every object is reported, so a restart or a missed event is made up for: a resync),
 * then watches from the list's resourceVersion until the server closes the stream (timeoutSeconds), the
 * version expires (410) or anything fails; then it lists again, after a backoff if the cycle failed.
 *
 * It only reports objects: it keeps no cache and makes no decisions (the reconcilers GET what they need).
 */
import * as https from 'node:https';
import { ApiError, type KubeClient } from './client';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'SYNC';
export interface KubeObject {
  metadata: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface WatcherOptions {
  client: KubeClient;
  /** The collection path, e.g. /apis/cryopod.io/v1alpha1/checkpoints. */
  path: string;
  labelSelector?: string;
  /** Length of one watch before the full relist, in seconds. */
  resyncSeconds?: number;
  onEvent(type: WatchEventType, obj: KubeObject): void;
  log?(msg: string): void;
  /** Backoff after a failed cycle: doubles from minBackoffMs up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class Watcher {
  private readonly abort = new AbortController();
  private running?: Promise<void>;
  /** Time of the last successful list (for /healthz). */
  lastSync = 0;

  constructor(private readonly o: WatcherOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    let backoff = this.o.minBackoffMs ?? 200;
    while (!this.abort.signal.aborted) {
      try {
        const rv = await this.list();
        backoff = this.o.minBackoffMs ?? 200;
        await this.watch(rv);
      } catch (err) {
        if (this.abort.signal.aborted) break;
        // 410 Gone: our version is too old, relist at once; anything else: back off, then relist.
        const gone = err instanceof ApiError && err.code === 410;
        this.o.log?.(`watch ${this.o.path}: ${(err as Error).message}${gone ? '' : `; retrying in ${backoff} ms`}`);
        if (!gone) {
          await sleep(backoff, this.abort.signal);
          backoff = Math.min(backoff * 2, this.o.maxBackoffMs ?? 10000);
        }
      }
    }
  }

  private query(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.o.labelSelector) q.set('labelSelector', this.o.labelSelector);
    return `${this.o.path}?${q}`;
  }

  private async list(): Promise<string> {
    const list = await this.o.client.get<{ metadata: { resourceVersion: string }; items: KubeObject[] }>(this.query({}));
    this.lastSync = Date.now();
    for (const item of list.items) this.o.onEvent('SYNC', item);
    return list.metadata.resourceVersion;
  }

  /** Streams one watch; resolves when the server ends it, rejects on errors (ERROR events included). */
  private async watch(resourceVersion: string): Promise<void> {
    const path = this.query({
      watch: '1',
      resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(this.o.resyncSeconds ?? 120),
    });
    const opts = await this.o.client.httpsOptions('GET', path, {});
    await new Promise<void>((resolve, reject) => {
      const req = https.request({ ...opts, signal: this.abort.signal }, (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let body: unknown = Buffer.concat(chunks).toString('utf8');
            try {
              body = JSON.parse(body as string);
            } catch {
              // keep the text
            }
            reject(new ApiError('WATCH', this.o.path, res.statusCode ?? 0, (body as { reason?: string }).reason ?? '', body));
          });
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const ev = JSON.parse(line) as { type: string; object: KubeObject & { code?: number; reason?: string; message?: string } };
            if (ev.type === 'ERROR') {
              const s = ev.object;
              req.destroy(new ApiError('WATCH', this.o.path, s.code ?? 0, s.reason ?? '', s));
              return;
            }
            if (ev.type === 'BOOKMARK') continue;
            this.o.onEvent(ev.type as WatchEventType, ev.object);
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
