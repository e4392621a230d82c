/**
 * End to end on a real two-node cluster (e2e/cluster/up.sh: kubelets, containerds, runc, the CNI bridge):
 * `helm install` of the chart with the image built here, a Node.js counter pod on node-a, then exactly
 * what a user does: `kubectl apply -f examples/checkpoint.yaml`, `kubectl apply -f examples/restore.yaml`.
 * The restored pod runs on node-b, its count goes on from the checkpointed value (a fresh start would
 * count from 1), its output reaches `kubectl logs` through the new container's pipes, its readiness probe
 * passes and the kubelet never restarts it. The cluster is torn down afterwards (down.sh checks that
 * nothing is left).
 *
 * Needs root and Linux cgroup v1 controllers (this machine's); runs in `npm test` (see e2e/README.md
 * for its cold and warm times).
 */
import { execFile, spawn } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '../testenv';

const run = promisify(execFile);
const repo = path.join(__dirname, '..');
const up = path.join(__dirname, 'cluster', 'up.sh');
const down = path.join(__dirname, 'cluster', 'down.sh');

// A cold up.sh includes building the Kubernetes servers when `npm test` has not done it first.
jest.setTimeout(15 * 60_000);

let env: NodeJS.ProcessEnv = process.env;
let prometheus = '';
async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run('kubectl', args, { env, maxBuffer: 16 << 20 });
  return stdout;
}
async function json(...args: string[]): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return JSON.parse(await kubectl(...args, '-o', 'json'));
}
/** The counter's state, asked over the pod network from this host. */
async function count(podIP: string): Promise<number> {
  const res = await fetch(`http://${podIP}:8080/`, { signal: AbortSignal.timeout(2000) });
  return ((await res.json()) as { count: number }).count;
}
/** Waits for a Checkpoint or Restore to reach Succeeded or Failed, and returns it. */
function finished(kind: 'checkpoint' | 'restore', name: string, timeoutMs: number): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return waitFor(`${kind} ${name} done`, async () => {
    const o = await json('get', kind, name);
    return ['Succeeded', 'Failed'].includes(o.status?.phase) && o;
  }, timeoutMs, 500);
}
/** `promtool check metrics` on TEXT: its exit code and what it printed. */
function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', ['check', 'metrics'], { env });
    let output = '';
    p.stdout.on('data', (d) => (output += d));
    p.stderr.on('data', (d) => (output += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, output }));
    p.stdin.end(text);
  });
}
/** One instant query to the e2e Prometheus: the single value, or undefined when the result is empty. */
async function promQuery(q: string): Promise<number | undefined> {
  const res = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
  return body.data.result.length ? Number(body.data.result[0].value[1]) : undefined;
}
function ready(pod: any): boolean { // eslint-disable-line @typescript-eslint/no-explicit-any
  return pod.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True') ?? false;
}

beforeAll(async () => {
  const { stdout } = await run('bash', [up], { maxBuffer: 16 << 20 });
  // up.sh's last line: export KUBECONFIG=... PATH=...
  const vars = Object.fromEntries(stdout.trim().split('\n').pop()!.replace(/^export /, '').split(' ').map((kv) => kv.split('=', 2)));
  env = { ...process.env, KUBECONFIG: vars.KUBECONFIG, PATH: vars.PATH.replace('$PATH', process.env.PATH ?? '') };
  prometheus = vars.PROMETHEUS_URL;
  const hostIP = JSON.parse(await kubectl('get', 'node', 'node-a', '-o', 'json')).status.addresses.find((a: { type: string }) => a.type === 'InternalIP').address;
  await run('helm', ['install', 'cryopod', path.join(repo, 'helm', 'cryopod'), '--namespace', 'cryopod-system', '--create-namespace',
    '--set', `apiServer.host=${hostIP}`, '--set', 'apiServer.port=27443',
    '--set', 'grafana.dashboard.enabled=true',
    '--set', `storage.hostPath=${path.join(path.dirname(vars.KUBECONFIG), 'images')}`, '--wait', '--timeout', '5m'], { env });
  await run('bash', [path.join(__dirname, 'cluster', 'scrape-targets.sh')], { env });
});

afterAll(async () => {
  await run('bash', [down], { maxBuffer: 16 << 20 });
});

test('helm install: the operator and an agent on each node are Ready', async () => {
  const pods = (await json('get', 'pods', '-n', 'cryopod-system')).items;
  const agents = pods.filter((p: any) => p.metadata.labels['app.kubernetes.io/component'] === 'node-agent'); // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(agents.map((p: any) => p.spec.nodeName).sort()).toEqual(['node-a', 'node-b']); // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(pods.every(ready)).toBe(true);
});

test('checkpoint a counter on node-a, restore it on node-b: it counts on from where it was', async () => {
  await kubectl('apply', '-f', path.join(__dirname, 'workloads', 'web-pod.yaml'));
  const web = await waitFor('pod web Ready', async () => { const p = await json('get', 'pod', 'web'); return ready(p) && p; }, 120_000, 500);
  expect(web.spec.nodeName).toBe('node-a');
  await waitFor('the counter past 3', async () => (await count(web.status.podIP)) > 3, 30_000, 500);

  await kubectl('apply', '-f', path.join(repo, 'examples', 'checkpoint.yaml'));
  const cp = await finished('checkpoint', 'web-1', 120_000);
  expect({ phase: cp.status.phase, conditions: cp.status.conditions }).toMatchObject({ phase: 'Succeeded' });
  // leaveRunning (the example's): the original still serves, and still counts.
  const afterCheckpoint = await count(web.status.podIP);

  await kubectl('apply', '-f', path.join(repo, 'examples', 'restore.yaml'));
  const rs = await finished('restore', 'web-1-restore', 180_000);
  expect({ phase: rs.status.phase, conditions: rs.status.conditions }).toMatchObject({ phase: 'Succeeded' });

  const restored = await waitFor('pod web-restored Ready', async () => { const p = await json('get', 'pod', 'web-restored'); return ready(p) && p; }, 60_000, 500);
  expect(restored.spec.nodeName).toBe('node-b');
  // It goes on from the checkpointed state: at least the value it had then (taken before afterCheckpoint),
  // where a fresh start would be at 1 or 2 by now.
  const first = await count(restored.status.podIP);
  expect(first).toBeGreaterThan(3);
  expect(first).toBeLessThanOrEqual(afterCheckpoint + 1);
  await waitFor('the restored counter to go on', async () => (await count(restored.status.podIP)) > first, 10_000, 500);
  // Its output goes to the new container's stdout: the kubelet's log of the restored pod shows the count
  // going on from where the checkpoint left it, not from count=1.
  const logs = await waitFor('count lines in kubectl logs', async () => {
    const l = await kubectl('logs', 'web-restored', '-c', 'app');
    return /count=\d+/.test(l) && l;
  }, 15_000, 500);
  const counts = [...logs.matchAll(/count=(\d+)/g)].map((m) => Number(m[1]));
  expect(counts[0]).toBeGreaterThan(3);
  const again = await json('get', 'pod', 'web-restored');
  expect(again.status.containerStatuses.map((s: { restartCount: number; state: object }) => [s.restartCount, Object.keys(s.state)])).toEqual([[0, ['running']]]);
});

test('both /metrics pass promtool check metrics; Prometheus scraped the run: p99 of cryopod_freeze_seconds', async () => {
  const pods = (await json('get', 'pods', '-n', 'cryopod-system')).items;
  const texts = new Map<string, string>();
  for (const p of pods) {
    const port = p.spec.containers[0].ports.find((x: { name: string }) => x.name === 'metrics').containerPort;
    const text = await (await fetch(`http://${p.status.podIP}:${port}/metrics`)).text();
    texts.set(p.metadata.labels['app.kubernetes.io/component'] + '@' + p.spec.nodeName, text);
    expect({ pod: p.metadata.name, ...(await promtoolCheck(text)) }).toEqual({ pod: p.metadata.name, code: 0, output: '' });
  }
  // The agent that checkpointed (node-a) observed one freeze; its bucket bounds the value in the status.
  const frozen: number = (await json('get', 'checkpoint', 'web-1')).status.durations.freezeSeconds;
  const buckets = [...texts.get('node-agent@node-a')!.matchAll(/^cryopod_freeze_seconds_bucket\{[^}]*\ble="([^"]+)"[^}]*\} (\d+)/gm)].map((m) => ({ le: Number(m[1]), n: Number(m[2]) }));
  const hi = buckets.findIndex((b) => b.n === 1);
  const [lo, up] = [hi > 0 ? buckets[hi - 1].le : 0, buckets[hi].le];
  expect(frozen).toBeGreaterThan(lo);
  expect(frozen).toBeLessThanOrEqual(up);
  // Prometheus found both agents and the operator through the API and scraped the run's one freeze.
  await waitFor('Prometheus to scrape the freeze', async () => (await promQuery('sum(cryopod_freeze_seconds_count)')) === 1, 30_000, 1000);
  expect(await promQuery('count(up{job="cryopod"} == 1)')).toBe(3);
  const p99 = await promQuery('histogram_quantile(0.99, sum by (le) (cryopod_freeze_seconds_bucket))');
  expect(p99).toBeGreaterThan(lo);
  expect(p99).toBeLessThanOrEqual(up);
  expect(await promQuery('sum(cryopod_restores_total{result="succeeded", component="node-agent"})')).toBe(1);

  // The chart's Grafana dashboard: every query is valid PromQL for this Prometheus, and the frozen-time
  // panel shows this run's freeze.
  const cm = await json('get', 'configmap', '-n', 'cryopod-system', 'cryopod-grafana-dashboard');
  const dashboard = JSON.parse(cm.data['cryopod.json']);
  const exprs: string[] = dashboard.panels.flatMap((panel: { targets: Array<{ expr: string }> }) => panel.targets.map((t) => t.expr.replace(/\$__rate_interval/g, '5m')));
  for (const e of exprs) {
    const res = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(e)}`);
    expect({ e, status: ((await res.json()) as { status: string }).status }).toEqual({ e, status: 'success' });
  }
});
