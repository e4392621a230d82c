/**
 * End to end on a real two-node cluster (e2e/cluster/up.sh: kubelets, containerds, runc, the CNI bridge):
 * `helm install` of the chart with the image built here, a Node.js counter pod on node-a, then exactly
 * what a user does: `kubectl apply -f examples/checkpoint.yaml`, `kubectl apply -f examples/restore.yaml`.
 * The restored pod runs on node-b, its count goes on from the checkpointed value (a fresh start would
 * count from 1), its output reaches `kubectl logs` through the new container's pipes, its readiness probe
 * passes and the kubelet never restarts it. Then Debian's PostgreSQL, moved from node-a to node-b by a
 * Checkpoint with leaveRunning: false: the same postmaster answers with a table made before it. The
 * cluster is torn down afterwards (down.sh checks that nothing is left).
 *
 * Needs root and Linux cgroup v1 controllers (this machine's); runs in `npm test` (see e2e/README.md
 * for its cold and warm times).
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '../testenv';
import { freezeQuantilesQuery, screenshotGraph } from '../testenv/prometheus-screenshot';

const run = promisify(execFile);
const repo = path.join(__dirname, '..');
const up = path.join(__dirname, 'cluster', 'up.sh');
const down = path.join(__dirname, 'cluster', 'down.sh');

// A cold up.sh includes building the Kubernetes servers when `npm test` has not done it first.
jest.setTimeout(15 * 60_000);

let env: NodeJS.ProcessEnv = process.env;
let prometheus = '';
let e2eDir = ''; // CRYOPOD_E2E_DIR of up.sh: the kubeconfig's directory
let startedAt = 0; // when the tests began: the screenshot's time range
async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run('kubectl', args, { env, maxBuffer: 16 << 20 });
  return stdout;
}
async function json(...args: string[]): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return JSON.parse(await kubectl(...args, '-o', 'json'));
}
/** The counter's state, asked over the pod network from this host. */
const count = (podIP: string) => countAt(podIP, 8080);
/** One SQL command to the e2e PostgreSQL at PODIP, from this host's psql over the pod network: its output. */
async function psql(podIP: string, sql: string): Promise<string> {
  const { stdout } = await run('/usr/lib/postgresql/15/bin/psql', ['-h', podIP, '-p', '5432', '-U', 'postgres', '-d', 'postgres', '-XAtq', '-c', sql], { timeout: 20_000 });
  return stdout.trim();
}
/** Waits for a Checkpoint or Restore to reach Succeeded or Failed, and returns it. */
function finished(kind: 'checkpoint' | 'restore', name: string, timeoutMs: number): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return waitFor(`${kind} ${name} done`, async () => {
    const o = await json('get', kind, name);
    return ['Succeeded', 'Failed'].includes(o.status?.phase) && o;
  }, timeoutMs, 500);
}
/** A finished Checkpoint's or Restore's phase and the message of its Ready condition (the reason it failed). */
function outcome(o: any): { phase: string; message?: string } { // eslint-disable-line @typescript-eslint/no-explicit-any
  return { phase: o.status.phase, message: o.status.conditions?.find((c: { type: string }) => c.type === 'Ready')?.message };
}
/** CMD with INPUT on its stdin: its exit code and what it printed (stdout and stderr). */
function runWithInput(cmd: string, args: string[], input: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env });
    let output = '';
    p.stdout.on('data', (d) => (output += d));
    p.stderr.on('data', (d) => (output += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, output }));
    p.stdin.end(input);
  });
}
const promtoolCheck = (text: string) => runWithInput('promtool', ['check', 'metrics'], text);
async function applyYaml(yaml: string): Promise<void> {
  const r = await runWithInput('kubectl', ['apply', '-f', '-'], yaml);
  if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.output}`);
}
async function readyPod(name: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return waitFor(`pod ${name} Ready`, async () => { const p = await json('get', 'pod', name); return ready(p) && p; }, 120_000, 500);
}
/** The counter's state on PORT (8080 unless given). */
async function countAt(podIP: string, port: number): Promise<number> {
  const res = await fetch(`http://${podIP}:${port}/`, { signal: AbortSignal.timeout(2000) });
  return ((await res.json()) as { count: number }).count;
}
/** One instant query to the e2e Prometheus: the single value, or undefined when the result is empty. */
async function promQuery(q: string): Promise<number | undefined> {
  const res = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
  return body.data.result.length ? Number(body.data.result[0].value[1]) : undefined;
}
/** How many freezes node-a's agent has observed (cryopod_freeze_seconds_count on its /metrics). */
async function freezesOnNodeA(): Promise<number> {
  const agent = (await json('get', 'pods', '-n', 'cryopod-system', '-l', 'app.kubernetes.io/component=node-agent')).items.find((p: { spec: { nodeName: string } }) => p.spec.nodeName === 'node-a');
  const text = await (await fetch(`http://${agent.status.podIP}:9090/metrics`)).text();
  return Number(/^cryopod_freeze_seconds_count(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0);
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
  e2eDir = path.dirname(vars.KUBECONFIG);
  const hostIP = JSON.parse(await kubectl('get', 'node', 'node-a', '-o', 'json')).status.addresses.find((a: { type: string }) => a.type === 'InternalIP').address;
  await run('helm', ['install', 'cryopod', path.join(repo, 'helm', 'cryopod'), '--namespace', 'cryopod-system', '--create-namespace',
    '--set', `apiServer.host=${hostIP}`, '--set', 'apiServer.port=27443',
    '--set', 'grafana.dashboard.enabled=true',
    '--set', `storage.hostPath=${path.join(path.dirname(vars.KUBECONFIG), 'images')}`, '--wait', '--timeout', '5m'], { env });
  await run('bash', [path.join(__dirname, 'cluster', 'scrape-targets.sh')], { env });
  startedAt = Date.now();
});

afterAll(async () => {
  // CRYOPOD_E2E_SCREENSHOT=/path.png (scripts/screenshot-metrics.sh e2e): Prometheus's graph of this run's
  // freezes, before down.sh stops it.
  const shot = process.env.CRYOPOD_E2E_SCREENSHOT;
  try {
    if (shot && prometheus) await screenshotGraph(prometheus, shot, freezeQuantilesQuery(), `${Math.ceil((Date.now() - startedAt) / 1000) + 10}s`);
  } finally {
    await run('bash', [down], { maxBuffer: 16 << 20 });
  }
});

test('helm install: the operator and an agent on each node are Ready', async () => {
  const pods = (await json('get', 'pods', '-n', 'cryopod-system')).items;
  const agents = pods.filter((p: any) => p.metadata.labels['app.kubernetes.io/component'] === 'node-agent'); // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(agents.map((p: any) => p.spec.nodeName).sort()).toEqual(['node-a', 'node-b']); // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(pods.every(ready)).toBe(true);
});

test('checkpoint a counter on node-a, restore it on node-b: it counts on from where it was', async () => {
  await kubectl('apply', '-f', path.join(__dirname, 'workloads', 'web-pod.yaml'));
  const web = await readyPod('web');
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

  const restored = await readyPod('web-restored');
  expect(restored.spec.nodeName).toBe('node-b');
  // It goes on from the checkpointed state: at least the value it had then (taken before afterCheckpoint),
  // where a fresh start would be at 1 or 2 by now.
  const first = await count(restored.status.podIP);
  await waitFor('the restored counter to go on', async () => (await count(restored.status.podIP)) > first, 10_000, 500);
  // Its output goes to the new container's stdout: the kubelet's log of the restored pod shows the count
  // going on from where the checkpoint left it, not from count=1.
  const logs = await waitFor('count lines in kubectl logs', async () => {
    const l = await kubectl('logs', 'web-restored', '-c', 'app');
    return /count=\d+/.test(l) && l;
  }, 15_000, 500);
  // The first count after the restore: the value at checkpoint time plus one (at most the value the
  // original showed after the checkpoint, plus one), where a fresh start would print count=1.
  const counts = [...logs.matchAll(/count=(\d+)/g)].map((m) => Number(m[1]));
  expect(counts[0]).toBeGreaterThan(3);
  expect(counts[0]).toBeLessThanOrEqual(afterCheckpoint + 1);
  expect(first).toBeGreaterThanOrEqual(counts[0]);
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
  // (the restore finished after the checkpoint: its count may be one scrape later than the freeze's)
  await waitFor('Prometheus to scrape the restore', async () => (await promQuery('sum(cryopod_restores_total{result="succeeded", component="node-agent"})')) === 1, 30_000, 1000);

  // The chart's Grafana dashboard: every query is valid PromQL for this Prometheus, and the frozen-time
  // panel shows this run's freeze.
  const cm = await json('get', 'configmap', '-n', 'cryopod-system', 'cryopod-dashboard');
  const dashboard = JSON.parse(cm.data['cryopod.json']);
  const exprs: string[] = dashboard.panels.flatMap((panel: { targets: Array<{ expr: string }> }) => panel.targets.map((t) => t.expr.replace(/\$__rate_interval/g, '5m')));
  for (const e of exprs) {
    const res = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(e)}`);
    expect({ e, status: ((await res.json()) as { status: string }).status }).toEqual({ e, status: 'success' });
  }
});

test('kubectl get checkpoints,restores shows phase, node, size and age; kubectl describe shows the Events', async () => {
  const table = await kubectl('get', 'checkpoints,restores');
  expect(table).toMatch(/NAME\s+POD\s+PHASE\s+READY\s+REASON\s+NODE\s+SIZE\s+AGE/);
  expect(table).toMatch(/web-1\s+web\s+Succeeded\s+True\s+Succeeded\s+node-a\s+\d+\s+\d+[sm]/);
  expect(table).toMatch(/web-1-restore\s+web-1\s+Succeeded\s+True\s+Succeeded\s+node-b\s+web-restored\s+\d+[sm]/);
  expect(await kubectl('describe', 'checkpoint', 'web-1')).toMatch(/Events:[\s\S]*Normal\s+Succeeded\s+\S+\s+cryopod-agent\s+checkpointed 1 container/);
  expect(await kubectl('describe', 'restore', 'web-1-restore')).toMatch(/Events:[\s\S]*Normal\s+Succeeded\s+\S+\s+cryopod-agent\s+restored 1 container/);
});

test('a pod of two containers (an app and a sidecar) is checkpointed and restored as one', async () => {
  await kubectl('apply', '-f', path.join(__dirname, 'workloads', 'duo-pod.yaml'));
  const duo = await readyPod('duo');
  await waitFor('both counters past 3', async () => (await countAt(duo.status.podIP, 8080)) > 3 && (await countAt(duo.status.podIP, 8081)) > 3, 30_000, 500);
  await applyYaml('{"apiVersion": "cryopod.io/v1alpha1", "kind": "Checkpoint", "metadata": {"name": "duo-1", "namespace": "default"}, "spec": {"podName": "duo"}}');
  const cp = await finished('checkpoint', 'duo-1', 120_000);
  expect({ phase: cp.status.phase, conditions: cp.status.conditions }).toMatchObject({ phase: 'Succeeded' });
  const after = [await countAt(duo.status.podIP, 8080), await countAt(duo.status.podIP, 8081)];
  await applyYaml('{"apiVersion": "cryopod.io/v1alpha1", "kind": "Restore", "metadata": {"name": "duo-1-restore", "namespace": "default"}, "spec": {"checkpointName": "duo-1", "targetNode": "node-b", "newPodName": "duo-restored"}}');
  const rs = await finished('restore', 'duo-1-restore', 180_000);
  expect({ phase: rs.status.phase, conditions: rs.status.conditions }).toMatchObject({ phase: 'Succeeded' });
  const pod = await readyPod('duo-restored');
  expect(pod.spec.nodeName).toBe('node-b');
  for (const [i, [name, port]] of ([['app', 8080], ['sidecar', 8081]] as const).entries()) {
    const logs = await waitFor(`count lines of ${name}`, async () => { const l = await kubectl('logs', 'duo-restored', '-c', name); return /count=\d+/.test(l) && l; }, 15_000, 500);
    const firstLogged = Number(/count=(\d+)/.exec(logs)![1]);
    const c = await countAt(pod.status.podIP, port);
    expect({ name, fromCheckpoint: firstLogged > 3 && firstLogged <= after[i] + 1, serving: c >= firstLogged }).toEqual({ name, fromCheckpoint: true, serving: true });
  }
  expect(pod.status.containerStatuses.map((s: { name: string; restartCount: number }) => [s.name, s.restartCount]).sort()).toEqual([['app', 0], ['sidecar', 0]]);
});

test('PostgreSQL: stopped by its Checkpoint on node-a, restored on node-b, the same server answers with the table made before', async () => {
  // Its data directory: a volume both nodes mount (workloads/postgres-pod.yaml), new for this run.
  const volume = path.join(e2eDir, 'volumes', 'postgres');
  fs.rmSync(volume, { recursive: true, force: true });
  await applyYaml(fs.readFileSync(path.join(__dirname, 'workloads', 'postgres-pod.yaml'), 'utf8').replaceAll('/var/lib/cryopod-e2e/', `${e2eDir}/`));
  const pg = await readyPod('pg');
  expect(pg.spec.nodeName).toBe('node-a');
  await psql(pg.status.podIP, 'CREATE TABLE frozen (id int, word text); INSERT INTO frozen VALUES (1, $$before$$), (2, $$the checkpoint$$);');
  const started = await psql(pg.status.podIP, 'SELECT pg_postmaster_start_time()');

  // leaveRunning: false, a migration: dumped, then stopped where it stands (no shutdown, as a dying node).
  await applyYaml('{"apiVersion": "cryopod.io/v1alpha1", "kind": "Checkpoint", "metadata": {"name": "pg-1", "namespace": "default"}, "spec": {"podName": "pg", "leaveRunning": false}}');
  const cp = await finished('checkpoint', 'pg-1', 120_000);
  expect(outcome(cp)).toEqual({ phase: 'Succeeded', message: expect.stringMatching(/^checkpointed 1 container/) });
  const stopped = await waitFor('the original pg pod to stop', async () => { const p = await json('get', 'pod', 'pg'); return p.status.phase === 'Failed' && p; }, 30_000, 500);
  expect(stopped.status.containerStatuses[0].restartCount).toBe(0);

  await applyYaml('{"apiVersion": "cryopod.io/v1alpha1", "kind": "Restore", "metadata": {"name": "pg-1-restore", "namespace": "default"}, "spec": {"checkpointName": "pg-1", "targetNode": "node-b", "newPodName": "pg-restored"}}');
  const rs = await finished('restore', 'pg-1-restore', 180_000);
  expect(outcome(rs)).toEqual({ phase: 'Succeeded', message: expect.stringMatching(/^restored 1 container/) });
  const restored = await readyPod('pg-restored'); // its readiness probe: a TCP connect to 5432
  expect(restored.spec.nodeName).toBe('node-b');
  const ip = restored.status.podIP;
  // The same postmaster (started before the checkpoint, not a fresh start with crash recovery), with the
  // table, and it writes: new rows through the restored shared buffers, WAL writer and checkpointer.
  expect(await psql(ip, 'SELECT pg_postmaster_start_time()')).toBe(started);
  expect(await psql(ip, 'SELECT string_agg(word, $$ $$ ORDER BY id) FROM frozen')).toBe('before the checkpoint');
  await psql(ip, 'INSERT INTO frozen VALUES (3, $$after$$); CHECKPOINT;');
  expect(await psql(ip, 'SELECT count(*) FROM frozen')).toBe('3');
  // Its log is the new container's stderr: an error it logs now is in `kubectl logs`.
  await expect(psql(ip, 'SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/);
  await waitFor('the error in kubectl logs', async () => /relation "no_such_table" does not exist/.test(await kubectl('logs', 'pg-restored', '-c', 'postgres')), 15_000, 500);
  const now = await json('get', 'pod', 'pg-restored');
  expect({ ready: ready(now), states: now.status.containerStatuses.map((c: { restartCount: number; state: object }) => [c.restartCount, Object.keys(c.state)]) }).toEqual({ ready: true, states: [[0, ['running']]] });
});

test('a pod holding what Cryopod cannot save: the Checkpoint fails Unsupported naming it, and the pod never stopped', async () => {
  await kubectl('apply', '-f', path.join(__dirname, 'workloads', 'uring-pod.yaml'));
  const uring = await readyPod('uring');
  const before = await count(uring.status.podIP);
  const freezesBefore = await freezesOnNodeA();
  await applyYaml('{"apiVersion": "cryopod.io/v1alpha1", "kind": "Checkpoint", "metadata": {"name": "uring-1", "namespace": "default"}, "spec": {"podName": "uring"}}');
  const cp = await finished('checkpoint', 'uring-1', 120_000);
  const readyCond = cp.status.conditions.find((c: { type: string }) => c.type === 'Ready');
  expect({ phase: cp.status.phase, reason: readyCond.reason }).toEqual({ phase: 'Failed', reason: 'Unsupported' });
  // The message names the container, the process and the fd, and what it is.
  expect(readyCond.message).toMatch(/app/);
  expect(readyCond.message).toMatch(/fd \d+/);
  expect(readyCond.message).toMatch(/io_uring/);
  // Never stopped: the agent froze nothing (its freeze count did not move); the counter went on, still
  // Ready, never restarted.
  expect(await freezesOnNodeA()).toBe(freezesBefore);
  await waitFor('the uring counter to go on', async () => (await count(uring.status.podIP)) > before + 1, 10_000, 500);
  const now = await json('get', 'pod', 'uring');
  expect({ ready: ready(now), restarts: now.status.containerStatuses[0].restartCount }).toEqual({ ready: true, restarts: 0 });
});
