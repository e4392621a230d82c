/**
 * The keyed work queue of the operator and the agent, after client-go's workqueue and pepr's queue.ts:
 *   - deduplicated: a key waiting in the queue is there once, however many events named it;
 *   - one reconcile per key at a time: an add() while the key is being reconciled marks it dirty, and it
 *     runs again once, after the current run (so the last event is never lost, and never raced);
 *   - retries with exponential backoff per key when the reconcile throws, reset when it succeeds;
 *   - requeueAfter for level-based timeouts ("look again in 3 s"), the earliest request winning.
 * Keys are opaque strings (namespace/name). The queue never holds objects: reconcilers GET the current state.
 */

/** The queue key of an object, "namespace/name" (undefined for an object without both). */
export function objectKey(obj: { metadata?: { namespace?: string; name?: string } }): string | undefined {
  const m = obj.metadata;
  return m?.namespace && m.name ? `${m.namespace}/${m.name}` : undefined;
}

/** A key back into [namespace, name] (names have no '/', so the first one splits). */
export function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

export interface ReconcileResult {
  /** Look at this key again after this long even if nothing changes (timeouts, polling). */
  requeueAfterMs?: number;
}

export type ReconcileFn = (key: string) => Promise<ReconcileResult | void>;

export interface QueueOptions {
  /** Keys reconciled at once (default 1). */
  concurrency?: number;
  /** Backoff after a failure: doubles from minBackoffMs (default 100) up to maxBackoffMs (default 30 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  onError?(key: string, err: unknown, retryInMs: number): void;
  /** Called whenever the number of waiting keys changes (the queue-depth gauge). */
  onDepth?(depth: number): void;
}

export class WorkQueue {
  private readonly waiting: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private readonly inflight = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly reconcile: ReconcileFn,
    private readonly o: QueueOptions = {},
  ) {}

  /** Keys waiting for a worker. */
  get depth(): number {
    return this.waiting.length;
  }

  /** Keys waiting or being reconciled (0 once the queue is idle or shut down). */
  get size(): number {
    return this.queued.size + this.processing.size;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.waiting.push(key);
    this.o.onDepth?.(this.waiting.length);
    this.pump();
  }

  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return; // an earlier look is already planned
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref?.();
    this.timers.set(key, { at, timer });
  }

  /**
   * Stops taking work, cancels planned retries and (unless wait is false: a simulated crash in tests)
   * waits for the reconciles in flight to finish.
   */
  async shutdown(wait = true): Promise<void> {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.waiting.length = 0;
    this.queued.clear();
    this.o.onDepth?.(0);
    while (wait && this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  private pump(): void {
    const limit = this.o.concurrency ?? 1;
    while (!this.stopped && this.processing.size < limit && this.waiting.length) {
      const key = this.waiting.shift()!;
      this.queued.delete(key);
      this.o.onDepth?.(this.waiting.length);
      this.processing.add(key);
      const run = this.run(key).finally(() => {
        this.inflight.delete(run);
        this.processing.delete(key);
        if (this.dirty.delete(key)) this.add(key);
        this.pump();
      });
      this.inflight.add(run);
    }
  }

  private async run(key: string): Promise<void> {
    try {
      const result = await this.reconcile(key);
      this.failures.delete(key);
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = Math.min((this.o.minBackoffMs ?? 100) * 2 ** (n - 1), this.o.maxBackoffMs ?? 30000);
      this.o.onError?.(key, err, delay);
      this.addAfter(key, delay);
    }
  }
}
