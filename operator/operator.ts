/**
 * Wires one operator: a watcher per kind feeds keys into that kind's work queue, whose reconciler does the
 * work; /metrics and /healthz on the side. start() and stop() are all main.ts and the tests need; stop()
 * lets the reconciles in flight finish (no half-written step is abandoned on a graceful shutdown).
 */
import * as http from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { ListWatch, WorkQueue, objectKey, type ReconcileFn } from '../kube';
import { CheckpointReconciler } from './checkpoint-reconciler';
import type { OperatorConfig } from './config';
import type { Ctx, TestHooks } from './context';
import { EventRecorder } from './events';
import { startHttp } from './http';
import { KubeClient } from './kube/client';
import { crPath, type Resource } from './kube/paths';
import { collectionSource } from './kube/watch-source';
import { OperatorMetrics } from './metrics';
import { RestoreReconciler } from './restore-reconciler';
import { ImageStore } from './storage';
import { Locations, remoteImagesFrom, type RemoteImages } from './image-locations';
import { sweepOrphans } from './orphan-sweep';

export interface OperatorOptions {
  hooks?: TestHooks;
  log?(msg: string): void;
  /** Collect Node.js process metrics too (main.ts: yes; tests: no). */
  processMetrics?: boolean;
}

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster();
  return kc;
}

export class Operator {
  readonly metrics: OperatorMetrics;
  readonly ctx: Ctx;
  private readonly watchers: ListWatch[] = [];
  private readonly queues: WorkQueue[] = [];
  private server?: http.Server;
  private remote?: RemoteImages;
  private sweeper?: NodeJS.Timeout;

  constructor(
    readonly cfg: OperatorConfig,
    opts: OperatorOptions = {},
  ) {
    const log = opts.log ?? ((m: string) => console.log(`${new Date().toISOString()} ${m}`));
    const client = new KubeClient(loadKubeConfig(cfg.kubeconfig));
    this.metrics = new OperatorMetrics(opts.processMetrics ?? false);
    this.ctx = {
      client,
      cfg,
      store: new Locations(new ImageStore(cfg.storageRoot), (this.remote = remoteImagesFrom({ ...cfg, allowUnsigned: cfg.insecureUnsigned === 'true' }))),
      events: new EventRecorder(client, log),
      metrics: this.metrics,
      log,
      now: () => new Date(),
      hooks: opts.hooks,
    };
  }

  async start(): Promise<void> {
    const cp = new CheckpointReconciler(this.ctx);
    const rs = new RestoreReconciler(this.ctx);
    this.run('checkpoints', 'checkpoint', (k) => cp.reconcile(k));
    this.run('restores', 'restore', (k) => rs.reconcile(k));
    const remote = this.remote;
    if (remote && this.cfg.orphanSweepSeconds > 0) {
      const sweep = (): void =>
        void sweepOrphans(this.ctx, remote.store).catch((err: Error) => this.ctx.log(`orphan sweep of ${remote.store.url}: ${err.message}`));
      this.sweeper = setInterval(sweep, this.cfg.orphanSweepSeconds * 1000);
      this.sweeper.unref();
    }
    if (this.cfg.metricsPort > 0) {
      this.server = await startHttp(this.cfg.metricsPort, this.metrics.registry, { healthy: () => this.healthy() });
    }
    this.ctx.log(`operator started (namespace ${this.cfg.namespace ?? 'all'}, storage ${this.cfg.storageRoot})`);
  }

  private run(resource: Resource, kind: 'checkpoint' | 'restore', reconcile: ReconcileFn): void {
    const { metrics, log, hooks } = this.ctx;
    const timed: ReconcileFn = async (key) => {
      const startedAt = Date.now();
      const end = metrics.reconcileDuration.startTimer({ kind });
      try {
        const r = await reconcile(key);
        end({ outcome: 'ok' });
        return r;
      } catch (err) {
        end({ outcome: 'error' });
        throw err;
      } finally {
        hooks?.reconciled?.(kind, key, startedAt);
      }
    };
    const queue = new WorkQueue(timed, {
      concurrency: this.cfg.concurrency,
      onError: (key, err, ms) => log(`${kind} ${key}: ${(err as Error).message}; retry in ${ms} ms`),
      onDepth: (d) => metrics.queueDepth.set({ kind }, d),
    });
    const watcher = new ListWatch({
      source: collectionSource(this.ctx.client, crPath(resource, this.cfg.namespace)),
      resyncSeconds: this.cfg.resyncSeconds,
      log,
      onEvent: (_type, obj) => {
        const key = objectKey(obj);
        if (key) queue.add(key);
      },
    });
    this.queues.push(queue);
    this.watchers.push(watcher);
    watcher.start();
  }

  healthy(): { ok: boolean; detail: string } {
    const stale = this.watchers.filter((w) => Date.now() - w.lastSync > 3 * this.cfg.resyncSeconds * 1000);
    return stale.length ? { ok: false, detail: `${stale.length} watch(es) have not listed recently` } : { ok: true, detail: 'ok' };
  }

  /**
   * Stops watching, then waits for the reconciles in flight; safe to call twice. wait=false abandons them
   * instead (what a crash does; tests use it to leave a reconcile half done).
   */
  async stop(wait = true): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all(this.watchers.map((w) => w.stop()));
    await Promise.all(this.queues.map((q) => q.shutdown(wait)));
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = undefined;
  }
}
