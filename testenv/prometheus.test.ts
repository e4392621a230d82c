import { bucketOf, prometheusConfig, sampleNames } from './prometheus';

const TEXT = [
  '# HELP x_seconds A histogram',
  '# TYPE x_seconds histogram',
  'x_seconds_bucket{le="0.01",node="a"} 0',
  'x_seconds_bucket{le="0.05",node="a"} 1',
  'x_seconds_bucket{node="b",le="0.1"} 3',
  'x_seconds_bucket{le="+Inf",node="a"} 3',
  'x_seconds_sum{node="a"} 0.2',
  'x_seconds_count 3',
].join('\n');

test('bucketOf: the (lower, upper] bucket holding a value, whatever the label order; above every bucket is an error', () => {
  expect(bucketOf(TEXT, 'x_seconds', 0.005)).toEqual({ lower: 0, upper: 0.01 });
  expect(bucketOf(TEXT, 'x_seconds', 0.05)).toEqual({ lower: 0.01, upper: 0.05 });
  expect(bucketOf(TEXT, 'x_seconds', 0.07)).toEqual({ lower: 0.05, upper: 0.1 });
  expect(() => bucketOf(TEXT, 'x_seconds', 2)).toThrow(/above every finite bucket of x_seconds \(0\.01, 0\.05, 0\.1\)/);
  expect(() => bucketOf(TEXT, 'y_seconds', 0.01)).toThrow(/\(none\)/);
});

test('sampleNames: the names of the samples, not of HELP or TYPE lines', () => {
  expect([...sampleNames(TEXT)]).toEqual(['x_seconds_bucket', 'x_seconds_sum', 'x_seconds_count']);
});

test('prometheusConfig: one job per name, its targets at /metrics, scraped every 250 ms', () => {
  expect(JSON.parse(prometheusConfig({ op: ['127.0.0.1:1'], agent: ['127.0.0.1:2', '127.0.0.1:3'] }))).toEqual({
    global: { scrape_interval: '250ms', scrape_timeout: '250ms', evaluation_interval: '1s' },
    scrape_configs: [
      { job_name: 'op', metrics_path: '/metrics', static_configs: [{ targets: ['127.0.0.1:1'] }] },
      { job_name: 'agent', metrics_path: '/metrics', static_configs: [{ targets: ['127.0.0.1:2', '127.0.0.1:3'] }] },
    ],
  });
});
