/**
 * The operator's Prometheus metrics, in a registry of its own (not prom-client's global one, so two
 * operators in one test process do not collide). Names follow Prometheus conventions (cryopod_ prefix,
 * _total, _seconds).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../kube';

export class OperatorMetrics {
  readonly registry = new Registry();
  /** Finished checkpoints by result (succeeded / failed), counted once per object when the operator sees it finish. */
  readonly checkpoints = new Counter({ name: 'cryopod_checkpoints_total', help: 'Checkpoints that finished, by result.', labelNames: ['result'], registers: [this.registry] });
  readonly restores = new Counter({ name: 'cryopod_restores_total', help: 'Restores that finished, by result.', labelNames: ['result'], registers: [this.registry] });
  readonly reconcileDuration = new Histogram({
    name: 'cryopod_reconcile_duration_seconds',
    help: 'Time of one reconcile, by kind and outcome.',
    labelNames: ['kind', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: 'cryopod_workqueue_depth', help: 'Keys waiting in the work queue.', labelNames: ['kind'], registers: [this.registry] });
  readonly imagesDeleted = new Counter({ name: 'cryopod_images_deleted_total', help: 'Image directories deleted (finalizer, retention, TTL).', registers: [this.registry] });

  private readonly counted = new Set<string>();

  constructor(defaultMetrics = false) {
    if (defaultMetrics) collectProcessMetrics(this.registry, 'cryopod_operator_');
  }

  /** Counts a finished object once per uid (reconciles of a finished object happen many times). */
  finished(kind: 'checkpoint' | 'restore', uid: string, result: 'succeeded' | 'failed'): void {
    if (this.counted.has(uid)) return;
    this.counted.add(uid);
    (kind === 'checkpoint' ? this.checkpoints : this.restores).inc({ result });
  }

  forget(uid: string): void {
    this.counted.delete(uid);
  }
}
