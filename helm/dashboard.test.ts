/**
 * The opt-in Grafana dashboard, rendered with the real helm binary: a ConfigMap with the sidecar's label
 * holding dashboards/cryopod.json exactly, only when grafana.dashboard.enabled; panels for every phase's
 * p50/p90/p99, frozen time, bytes and failures by reason. That every metric the panels read is one the
 * agent and operator really export is checked against their live /metrics in
 * node-agent/metrics.integration.test.ts.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import { ensureTools } from '../testenv';
import { loadDashboard, metricNames, panelQueries } from './test-dashboard';

const run = promisify(execFile);
const chart = path.join(__dirname, 'cryopod');

interface Doc {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  data?: Record<string, string>;
}

async function template(...args: string[]): Promise<Doc[]> {
  const { helm } = await ensureTools();
  const { stdout } = await run(helm, ['template', 'cryopod', chart, '--namespace', 'cryopod-system', ...args], { maxBuffer: 16 << 20 });
  return (yaml.loadAll(stdout) as Doc[]).filter(Boolean);
}

const dashboards = (docs: Doc[]): Doc[] => docs.filter((d) => d.kind === 'ConfigMap' && d.data?.['cryopod.json'] !== undefined);

describe('the Grafana dashboard', () => {
  test('is not rendered by default', async () => {
    expect(dashboards(await template())).toEqual([]);
    expect(dashboards(await template('--set', 'grafana.dashboard.enabled=false'))).toEqual([]);
  });

  test('enabled: one ConfigMap with the sidecar label, holding dashboards/cryopod.json as it is', async () => {
    const found = dashboards(await template('--set', 'grafana.dashboard.enabled=true', '--set', 'grafana.dashboard.annotations.grafana_folder=Cryopod'));
    expect(found).toHaveLength(1);
    const cm = found[0];
    expect(cm.metadata).toMatchObject({ name: 'cryopod-dashboard', namespace: 'cryopod-system', labels: { grafana_dashboard: '1' }, annotations: { grafana_folder: 'Cryopod' } });
    expect(JSON.parse(cm.data!['cryopod.json'])).toEqual(loadDashboard());
    const other = dashboards(await template('--set', 'grafana.dashboard.enabled=true', '--set', 'grafana.dashboard.namespace=monitoring'));
    expect(other[0].metadata.namespace).toBe('monitoring');
  });

  test('has p50, p90 and p99 of every phase, frozen time, bytes and failures by reason', () => {
    const queries = panelQueries(loadDashboard());
    for (const phase of ['freeze', 'dump', 'upload', 'download', 'restore']) {
      const quantiles = queries
        .filter((q) => metricNames(q.expr).includes(`cryopod_${phase}_seconds_bucket`))
        .map((q) => q.expr.match(/^histogram_quantile\((0\.\d+),/)?.[1]);
      expect({ phase, quantiles }).toEqual({ phase, quantiles: ['0.5', '0.9', '0.99'] });
    }
    const reads = (name: string, by: string) => queries.some((q) => metricNames(q.expr).includes(name) && q.expr.includes(`by (${by})`));
    expect(reads('cryopod_freeze_seconds_sum', 'node')).toBe(true); // frozen time
    expect(reads('cryopod_checkpoint_bytes_total', 'node')).toBe(true);
    expect(reads('cryopod_failures_total', 'kind, reason')).toBe(true);
  });
});

test('metrics.scrapeAnnotations puts prometheus.io annotations on both metrics Services, with their ports', async () => {
  const services = (docs: Doc[]) => docs.filter((d) => d.kind === 'Service' && d.metadata.name.endsWith('-metrics'));
  expect(services(await template()).map((s) => s.metadata.annotations)).toEqual([undefined, undefined]);
  const annotated = services(await template('--set', 'metrics.scrapeAnnotations=true'));
  expect(Object.fromEntries(annotated.map((s) => [s.metadata.name, s.metadata.annotations]))).toEqual({
    'cryopod-operator-metrics': { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io/path': '/metrics' },
    'cryopod-node-agent-metrics': { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090', 'prometheus.io/path': '/metrics' },
  });
});
