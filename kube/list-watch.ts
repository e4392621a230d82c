/**
 * List-then-watch that never gives up, for the operator and the agent. client-node's informer (ListWatch)
 * stops for good on any watch error other than 410 (client-node src/cache.ts); neither component may go
 * deaf because the API server restarted or RBAC was briefly wrong.
 *
 * Each cycle lists (every object is reported as SYNC, so a restart or a missed event is made up for: a
 * resync), then watches from the list's resourceVersion until the server ends the stream, resyncSeconds
 * pass, the version expires (410 Gone: relist at once) or anything else fails (relist after a backoff that
 * doubles from minBackoffMs to maxBackoffMs, reset by the next good list).
 *
 * It only reports objects: it keeps no cache and makes no decisions (the reconcilers GET what they need).
 * How a list and a watch reach the API server is the WatchSource's business (the operator streams over
 * node:https, the agent uses client-node's Watch), so this loop is the same for both.
 */

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
/** SYNC: the object was in a list (a relist reports every object again). */
export type ListWatchEventType = WatchEventType | 'SYNC';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface WatchSource<T extends KubeObject = KubeObject> {
  /** What is watched, for log lines (e.g. the collection path). */
  readonly name: string;
  list(): Promise<{ items: T[]; resourceVersion: string }>;
  /**
   * One watch from resourceVersion. Resolves when the server ends it or signal aborts; rejects on a failure
   * with an error whose `code` is the HTTP status, 410 included (ERROR events become a WatchError). BOOKMARK
   * events are not passed on.
   */
  watch(resourceVersion: string, timeoutSeconds: number, onEvent: (type: WatchEventType, obj: T) => void, signal: AbortSignal): Promise<void>;
}

/** An ERROR event of a watch (a metav1.Status), as an error with its HTTP code. */
export class WatchError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(`watch error ${code}: ${message}`);
    this.name = 'WatchError';
  }
}

/** 410 Gone: the resourceVersion is too old (routine; list again at once). */
export function isGone(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === 410;
}

export interface ListWatchOptions<T extends KubeObject> {
  source: WatchSource<T>;
  onEvent(type: ListWatchEventType, obj: T): void;
  log?(msg: string): void;
  /** Length of one watch before the full relist, in seconds (default 300). */
  resyncSeconds?: number;
  /** Backoff after a failed cycle (defaults 200 ms and 10 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class ListWatch<T extends KubeObject = KubeObject> {
  private readonly abort = new AbortController();
  private running?: Promise<void>;
  /** Time of the last successful list (0: none yet), for /healthz. */
  lastSync = 0;
  /** Successful lists so far. */
  lists = 0;

  constructor(private readonly o: ListWatchOptions<T>) {}

  /** True once the first list succeeded. */
  get synced(): boolean {
    return this.lists > 0;
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const min = this.o.minBackoffMs ?? 200;
    let backoff = min;
    while (!this.abort.signal.aborted) {
      try {
        const list = await this.o.source.list();
        this.lastSync = Date.now();
        this.lists++;
        backoff = min;
        for (const item of list.items) this.o.onEvent('SYNC', item);
        await this.watchOnce(list.resourceVersion);
      } catch (err) {
        if (this.abort.signal.aborted) break;
        const gone = isGone(err);
        const first = String((err as Error)?.message ?? err).split('\n')[0];
        this.o.log?.(`watch ${this.o.source.name}: ${first}; ${gone ? 'relisting now' : `relisting in ${backoff} ms`}`);
        if (!gone) {
          await sleep(backoff, this.abort.signal);
          backoff = Math.min(backoff * 2, this.o.maxBackoffMs ?? 10000);
        }
      }
    }
  }

  /** One watch, ended by the server, by resyncSeconds passing (our own deadline, too) or by stop(). */
  private async watchOnce(resourceVersion: string): Promise<void> {
    if (this.abort.signal.aborted) return; // stopped while it listed: the abort event is already past
    const seconds = this.o.resyncSeconds ?? 300;
    const cycle = new AbortController();
    const onStop = (): void => cycle.abort();
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    const resync = setTimeout(() => cycle.abort(), seconds * 1000);
    try {
      await this.o.source.watch(resourceVersion, seconds, (type, obj) => this.o.onEvent(type, obj), cycle.signal);
    } catch (err) {
      if (!cycle.signal.aborted) throw err; // an abort (resync or stop) is a clean end, whatever it threw
    } finally {
      clearTimeout(resync);
      this.abort.signal.removeEventListener('abort', onStop);
    }
  }
}

/** Resolves after ms, or at once when signal aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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
