import { Registry } from 'prom-client';
import { collectProcessMetrics } from './process-metrics';

test('the process metrics are prefixed and have no gauge named like a counter', async () => {
  const registry = new Registry();
  collectProcessMetrics(registry, 'cryopod_x_');
  const types = Object.fromEntries((await registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
  expect(types).toMatchObject({ cryopod_x_process_cpu_seconds_total: 'counter', cryopod_x_nodejs_active_handles: 'gauge' });
  const gaugesEndingInTotal = Object.entries(types).filter(([name, type]) => type !== 'counter' && name.endsWith('_total'));
  expect(gaugesEndingInTotal).toEqual([]);
  expect(Object.keys(types).every((n) => n.startsWith('cryopod_x_'))).toBe(true);
});
