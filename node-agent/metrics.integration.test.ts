/**
 * The metrics as a user's Prometheus sees them: a real Prometheus (Debian's, testenv/prometheus.ts)
 * scrapes the real operator and a real agent, both against a real kube-apiserver with the chart's RBAC,
 * while the operator dispatches Checkpoints of real processes (in cgroups named like a pod's) and the
 * agent dumps them:
 *
 *   - `promtool check metrics` finds nothing on either /metrics (the operator's with its process metrics,
 *     as main.ts ships it);
 *   - the p99 of cryopod_freeze_seconds from PromQL (histogram_quantile over the bucket totals, and over
 *     their rate) lies in the bucket of the longest freeze the Checkpoints' statuses reported;
 *   - a failure is counted by its reason (cryopod_failures_total{reason="PodNotFound"});
 *   - every query of the chart's Grafana dashboard reads only metrics the two export (a renamed metric
 *     fails here), parses and runs in Prometheus, and the freeze/dump panels have data.
 *
 * CRYOPOD_PROMETHEUS_SCREENSHOT=/path.png (scripts/screenshot-metrics.sh) also screenshots Prometheus's
 * graph page with headless Chromium before Prometheus is stopped: the picture in docs/.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Agent } from './agent';
import { startFakeContainer } from './test/test-cgroup-pod';
import { createPod, setContainerRunning } from './test/test-cluster';
import { freePorts } from '../testenv/ports';
import { bucketOf, promtoolCheckMetrics, sampleNames, startPrometheus, type Prometheus } from '../testenv/prometheus';
import { freezeQuantilesQuery, screenshotGraph } from '../testenv/prometheus-screenshot';
import { DEFAULTS } from '../operator/config';
import { Operator } from '../operator/operator';
import { createCheckpoint, createNamespace, getCheckpoint, setup, waitFor, type Env } from '../operator/test/test-fixture';
import { asPrometheusQuery, loadDashboard, metricNames, panelQueries } from '../helm/test-dashboard';

jest.setTimeout(300000);

const NODE = 'node-m';
const NS = 'team-metrics';
const CHECKPOINTS = 3;
const P99_TOTALS = 'histogram_quantile(0.99, sum by (le) (cryopod_freeze_seconds_bucket))';
// A window longer than the whole run, so that it holds every checkpoint's increase even on a slow machine.
const P99_RATE = 'histogram_quantile(0.99, sum by (le) (rate(cryopod_freeze_seconds_bucket[10m])))';

function httpGet(port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${p}: HTTP ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

let env: Env;
let agent: Agent | undefined;
let prom: Prometheus | undefined;
let operatorPort: number;
const cleanups: Array<() => Promise<void> | void> = [];
const freezes: number[] = [];

beforeAll(async () => {
  env = await setup();
  await createNamespace(env.admin, NS);
  const stateDir = fs.mkdtempSync(path.join(env.tmpDir, 'agent-state-'));
  agent = new Agent(
    { nodeName: NODE, podName: 'cryopod-node-agent-m', storageRoot: env.storageRoot, stateDir, port: 0, bind: '127.0.0.1', kubeconfig: env.agentKubeconfig, freezeMode: 'native', concurrency: 1 },
    { log: () => undefined },
  );
  await agent.start();
  await waitFor('the agent to list its work', async () => agent!.ready());
  [operatorPort] = await freePorts(1);
  // As main.ts runs it: with the process metrics, whose names promtool checks too.
  const op = new Operator(
    { ...DEFAULTS, kubeconfig: env.operatorKubeconfig, storageRoot: env.storageRoot, metricsPort: operatorPort, pollSeconds: 1 },
    { processMetrics: true, log: () => undefined },
  );
  env.operators.push(op); // env.stop() stops it
  await op.start();
  prom = await startPrometheus({ 'cryopod-operator': [`127.0.0.1:${operatorPort}`], 'cryopod-node-agent': [`127.0.0.1:${agent.port}`] });
  await prom.waitForTargetsUp();
}, 600000);

afterAll(async () => {
  const shot = process.env.CRYOPOD_PROMETHEUS_SCREENSHOT;
  try {
    if (shot && prom) await screenshotGraph(prom.url, shot, freezeQuantilesQuery(), '20s');
  } finally {
    await prom?.stop();
    for (const c of cleanups.reverse()) await c();
    await agent?.stop();
    await env?.stop();
  }
});

test(`${CHECKPOINTS} Checkpoints of real processes, dispatched by the operator, dumped by the agent: Succeeded with their freeze times`, async () => {
  for (let i = 0; i < CHECKPOINTS; i++) {
    const name = `web-${i}`;
    const pod = await createPod(env.cp.adminKubeconfig, NS, name, NODE);
    const ctr = await startFakeContainer('v1', pod.metadata!.uid!);
    cleanups.push(() => ctr.destroy());
    await setContainerRunning(env.cp.adminKubeconfig, pod, ctr.containerID);
    await createCheckpoint(env.admin, NS, `ckpt-${i}`, { podName: name });
    const cp = await waitFor(`ckpt-${i} to finish`, async () => {
      const c = await getCheckpoint(env.admin, NS, `ckpt-${i}`);
      return (c.status?.phase === 'Succeeded' || c.status?.phase === 'Failed') && c;
    }, 60000);
    const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
    expect({ phase: cp.status?.phase, failure: ready?.status === 'True' ? undefined : ready?.message }).toEqual({ phase: 'Succeeded', failure: undefined });
    expect(cp.status?.durations?.freezeSeconds).toBeGreaterThan(0);
    freezes.push(cp.status!.durations!.freezeSeconds!);
  }
  // And one the operator fails itself, for the failures-by-reason series.
  await createCheckpoint(env.admin, NS, 'ckpt-ghost', { podName: 'no-such-pod' });
  await waitFor('ckpt-ghost to fail', async () => (await getCheckpoint(env.admin, NS, 'ckpt-ghost')).status?.phase === 'Failed');
});

test('promtool check metrics passes on the agent\'s and the operator\'s /metrics', async () => {
  for (const [who, port] of [['agent', agent!.port as number], ['operator', operatorPort]] as const) {
    const text = await httpGet(port, '/metrics');
    expect(text).toMatch(/^# TYPE cryopod_/m);
    expect({ who, findings: await promtoolCheckMetrics(text) }).toEqual({ who, findings: '' });
  }
});

test('the p99 of cryopod_freeze_seconds from Prometheus lies in the bucket of the longest freeze the statuses reported', async () => {
  expect(freezes).toHaveLength(CHECKPOINTS);
  // Prometheus has scraped every observation once the count it stores is the number of checkpoints.
  await waitFor('Prometheus to store all freezes', async () => (await prom!.query('sum(cryopod_freeze_seconds_count)'))[0]?.value === CHECKPOINTS);
  const longest = Math.max(...freezes);
  const { lower, upper } = bucketOf(await httpGet(agent!.port as number, '/metrics'), 'cryopod_freeze_seconds', longest);
  // With 3 observations the 0.99 rank (2.97) falls in the bucket of the largest; histogram_quantile
  // interpolates inside it, so bucket resolution is all the precision there is.
  for (const promql of [P99_TOTALS, P99_RATE]) {
    const [p99] = await prom!.query(promql);
    expect({ promql, longest, lower, upper, inBucket: p99 !== undefined && p99.value > lower && p99.value <= upper }).toEqual({ promql, longest, lower, upper, inBucket: true });
  }
  const [count] = await prom!.query(`sum(cryopod_freeze_seconds_count{job="cryopod-node-agent", node="${NODE}"})`);
  expect(count.value).toBe(CHECKPOINTS);
  const [sum] = await prom!.query('sum(cryopod_freeze_seconds_sum)');
  expect(sum.value).toBeCloseTo(freezes.reduce((a, b) => a + b, 0), 5);
});

test('a failure is counted once by its reason', async () => {
  const failures = await waitFor('the failure series', async () => {
    const r = await prom!.query('cryopod_failures_total{job="cryopod-operator"} > 0');
    return r.length > 0 && r;
  });
  expect(failures.map((s) => [s.metric.kind, s.metric.reason, s.value])).toEqual([['checkpoint', 'PodNotFound', 1]]);
  // Every other reason is there at 0 from the start, so that increase() sees a first failure too.
  const [zeros] = await prom!.query('count(cryopod_failures_total{job="cryopod-operator"} == 0)');
  expect(zeros.value).toBeGreaterThanOrEqual(2 * 14 - 1);
});

test('every query of the Grafana dashboard reads exported metrics, runs in Prometheus, and the checkpoint panels have data', async () => {
  const exported = new Set([...sampleNames(await httpGet(agent!.port as number, '/metrics')), ...sampleNames(await httpGet(operatorPort, '/metrics'))]);
  const queries = panelQueries(loadDashboard());
  expect(queries.length).toBeGreaterThanOrEqual(15);
  for (const q of queries) {
    const names = metricNames(q.expr);
    expect(names.length).toBeGreaterThan(0);
    expect({ panel: q.panel, missing: names.filter((n) => !exported.has(n)) }).toEqual({ panel: q.panel, missing: [] });
    const run = async () => (await prom!.query(asPrometheusQuery(q.expr))).some((s) => Number.isFinite(s.value)); // throws on a parse error
    const hasData = await run();
    if (/cryopod_(freeze|dump)_seconds|cryopod_checkpoint_bytes|cryopod_failures/.test(q.expr)) {
      // A rate needs two samples after the change: at most a few scrapes (250 ms each) after the last checkpoint.
      expect({ expr: q.expr, hasData: hasData || (await waitFor(`data for ${q.expr}`, run, 10000)) }).toEqual({ expr: q.expr, hasData: true });
    }
  }
});
