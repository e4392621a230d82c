/**
 * The operator's WatchSource (kube/list-watch.ts runs the list-watch loop): a list and a streamed watch of
 * one collection over KubeClient's raw HTTPS, so a watch failure keeps its exact status code (403, 410, …).
 */
import * as https from 'node:https';
import { WatchError, type KubeObject, type WatchEventType, type WatchSource } from '../../kube';
import { ApiError, type KubeClient } from './client';

/** path: the collection, e.g. /apis/cryopod.io/v1alpha1/checkpoints. */
export function collectionSource(client: KubeClient, path: string, labelSelector?: string): WatchSource {
  const query = (extra: Record<string, string>): string => {
    const q = new URLSearchParams(extra);
    if (labelSelector) q.set('labelSelector', labelSelector);
    return `${path}?${q}`;
  };
  return {
    name: path,
    async list() {
      const list = await client.get<{ metadata: { resourceVersion: string }; items: KubeObject[] }>(query({}));
      return { items: list.items, resourceVersion: list.metadata.resourceVersion };
    },
    async watch(resourceVersion, timeoutSeconds, onEvent, signal) {
      const watchPath = query({ watch: '1', resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds) });
      const opts = await client.httpsOptions('GET', watchPath, {});
      await streamWatch(opts, path, onEvent, signal);
    },
  };
}

/** Streams one watch; resolves when the server ends it, rejects on errors (ERROR events included). */
function streamWatch(opts: https.RequestOptions, path: string, onEvent: (type: WatchEventType, obj: KubeObject) => void, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = https.request({ ...opts, signal }, (res) => {
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
          reject(new ApiError('WATCH', path, res.statusCode ?? 0, (body as { reason?: string }).reason ?? '', body));
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
          const ev = JSON.parse(line) as { type: string; object: KubeObject & { code?: number; message?: string } };
          if (ev.type === 'ERROR') {
            req.destroy(new WatchError(ev.object.code ?? 0, ev.object.message ?? 'unknown'));
            return;
          }
          if (ev.type === 'BOOKMARK') continue;
          onEvent(ev.type as WatchEventType, ev.object);
        }
      });
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
