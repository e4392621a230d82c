/**
 * prom-client's default process and Node.js metrics, minus the three it names against Prometheus's rules:
 * nodejs_active_{handles,requests,resources}_total are gauges with a counter's `_total` suffix, which
 * `promtool check metrics` rejects (and rate() over them would be meaningless). prom-client cannot rename
 * them, so they are dropped: a /metrics that passes promtool (e2e/ checks it on a real cluster) is worth
 * more than three handle counts.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

const MISNAMED = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function collectProcessMetrics(registry: Registry, prefix: string): void {
  collectDefaultMetrics({ register: registry, prefix });
  for (const name of MISNAMED) registry.removeSingleMetric(prefix + name);
}
