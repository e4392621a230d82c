/**
 * The agent's WatchSource (kube/list-watch.ts runs the list-watch loop): one custom resource across all
 * namespaces with a label selector, through AgentApi's list and watch.
 */
import { WatchError, type KubeObject, type WatchSource } from '../kube';
import type { AgentApi } from './kube';

export function customResourceSource(api: AgentApi, plural: string, labelSelector: string): WatchSource {
  return {
    name: `${plural} (${labelSelector})`,
    list: () => api.listCustom<KubeObject>(plural, labelSelector),
    watch: (resourceVersion, timeoutSeconds, onEvent, signal) =>
      new Promise<void>((resolve, reject) => {
        let done = false;
        let abortWatch: (() => void) | undefined;
        const finish = (err: unknown): void => {
          if (done) return;
          done = true;
          signal.removeEventListener('abort', onAbort);
          abortWatch?.();
          if (err) reject(err instanceof Error ? err : new Error(String(err)));
          else resolve();
        };
        const onAbort = (): void => finish(null);
        signal.addEventListener('abort', onAbort, { once: true });
        api
          .watchCustom<KubeObject & { code?: number; message?: string }>(plural, labelSelector, resourceVersion, timeoutSeconds, (type, obj) => {
            if (done) return;
            if (type === 'ERROR') finish(new WatchError(obj.code ?? 0, obj.message ?? 'unknown'));
            else if (type !== 'BOOKMARK') onEvent(type, obj);
          }, finish)
          .then(
            (w) => {
              if (done) w.abort();
              else abortWatch = () => w.abort();
            },
            finish,
          );
        if (signal.aborted) finish(null);
      }),
  };
}
