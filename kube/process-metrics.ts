/**
 * The process metrics of a Cryopod component (prom-client's defaults: CPU, memory, heap, GC, event-loop
 * lag, fds, handles), prefixed, on the component's own registry, minus what Prometheus's naming rules
 * refuse: prom-client names three gauges nodejs_active_{handles,requests,resources}_total, a suffix
 * reserved for counters (`promtool check metrics` flags them). They are dropped, not renamed: each is the
 * sum of the gauge of the same name without the suffix (by type), e.g. sum(cryopod_agent_nodejs_active_handles).
 */
import { collectDefaultMetrics, type Registry } from 'prom-client';

const GAUGES_NAMED_LIKE_COUNTERS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function collectProcessMetrics(registry: Registry, prefix: string): void {
  collectDefaultMetrics({ register: registry, prefix });
  for (const name of GAUGES_NAMED_LIKE_COUNTERS) registry.removeSingleMetric(prefix + name);
}
