import { Registry } from 'prom-client';
import { collectProcessMetrics } from './process-metrics';

test('the default process metrics, with no gauge named like a counter (what promtool check metrics rejects)', async () => {
  const registry = new Registry();
  collectProcessMetrics(registry, 'cryopod_test_');
  const text = await registry.metrics();
  const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1], type: m[2] }));
  expect(types.map((t) => t.name)).toEqual(expect.arrayContaining(['cryopod_test_process_cpu_seconds_total', 'cryopod_test_nodejs_heap_size_used_bytes']));
  expect(types.filter((t) => t.type !== 'counter' && t.name.endsWith('_total'))).toEqual([]);
});
