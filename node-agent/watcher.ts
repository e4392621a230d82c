/**
 * List, then watch, one custom resource across all namespaces with a label selector, feeding keys
 * ("namespace/name") to a queue. An informer is not enough: client-node's ListWatch stops on a watch error
 * other than 410 Gone. This loop never stops on its own: any error or close of the watch leads to a fresh
 * list (with backoff while the server keeps failing), and every list re-queues every object, so work that
 * changed while the watch was down is picked up (level-based).
 */
import { AgentApi, WatchEventType } from './kube';

export interface WatcherOptions {
  plural: string;
  labelSelector: string;
  onKey: (key: string) => void;
  log: (msg: string) => void;
  /** Re-list at least this often even when the watch is healthy (default 5 minutes). */
  resyncMs?: number;
  maxBackoffMs?: number;
}

interface Named {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

const sleep = (ms: number, signal: { stopped: boolean }): Promise<void> =>
  new Promise((r) => {
    const t = setTimeout(r, ms);
    if (signal.stopped) clearTimeout(t), r();
  });

export class ListWatcher {
  private state = { stopped: false };
  private abortWatch?: () => void;
  private wake?: () => void;
  private loop?: Promise<void>;
  /** True once the first list succeeded. */
  synced = false;
  lists = 0;

  constructor(private readonly api: AgentApi, private readonly opts: WatcherOptions) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.state.stopped = true;
    this.abortWatch?.();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.state.stopped) {
      try {
        const list = await this.api.listCustom<Named>(this.opts.plural, this.opts.labelSelector);
        this.lists++;
        for (const item of list.items) this.emit(item);
        this.synced = true;
        failures = 0;
        await this.watchUntilDone(list.resourceVersion);
      } catch (err) {
        failures++;
        const delay = Math.min(this.opts.maxBackoffMs ?? 30000, 250 * 2 ** Math.min(failures - 1, 10));
        this.opts.log(`${this.opts.plural}: list/watch failed (${(err as Error).message?.split('\n')[0]}); re-listing in ${delay} ms`);
        await sleep(delay, this.state);
      }
    }
  }

  private emit(obj: Named): void {
    const m = obj.metadata;
    if (m?.name && m.namespace) this.opts.onKey(`${m.namespace}/${m.name}`);
  }

  /** Resolves when the watch closed cleanly or the resync period passed; rejects on a watch error. */
  private watchUntilDone(resourceVersion: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let finished = false;
      const finish = (err: unknown): void => {
        if (finished) return;
        finished = true;
        clearTimeout(resync);
        this.abortWatch?.();
        this.abortWatch = undefined;
        this.wake = undefined;
        if (err && !this.state.stopped) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve();
      };
      const resync = setTimeout(() => finish(null), this.opts.resyncMs ?? 300000);
      this.wake = () => finish(null);
      this.api
        .watchCustom<Named & { code?: number; message?: string }>(
          this.opts.plural,
          this.opts.labelSelector,
          resourceVersion,
          (type: WatchEventType, obj) => {
            // 410 Gone (resourceVersion too old) is routine: list again at once. Other errors back off.
            if (type === 'ERROR') finish(obj.code === 410 ? null : new Error(`watch error ${obj.code ?? ''}: ${obj.message ?? 'unknown'}`));
            else if (type !== 'BOOKMARK') this.emit(obj);
          },
          (err) => finish(err),
        )
        .then((w) => {
          if (finished) w.abort();
          else this.abortWatch = () => w.abort();
        }, finish);
    });
  }
}
