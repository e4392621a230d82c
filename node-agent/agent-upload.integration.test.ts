/**
 * The node agent's upload to a real MinIO against a real kube-apiserver, when things go wrong:
 *
 *   - the agent (the built main.js, in a child process) SIGKILLed in the middle of an upload, the upload
 *     frozen at a known point by a TCP proxy in front of MinIO: the next agent on the node resumes it
 *     (the files stored whole are not sent again) and the Checkpoint ends Succeeded under the first claim,
 *     its images sealed and signed in the bucket, nothing left on the node, no multipart upload left;
 *   - MinIO SIGKILLed in the middle of an upload and started again: the Checkpoint ends Succeeded after
 *     the agent's retries, every file whole and signed in the bucket;
 *   - a storage root with too little room for the pod's images: Failed/InsufficientStorage before
 *     anything is frozen, the process running on.
 */
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { verifySeal } from '../images/seal-verify';
import { openStore } from '../store';
import { startMinio, type Minio } from '../store/test/minio';
import { waitFor } from '../testenv';
import { Agent } from './agent';
import { freezerState } from './freezer';
import { tracedThreads } from './procfs';
import { startStallProxy, type StallProxy } from './test/stall-proxy';
import { startFakeContainer, type FakeContainer } from './test/test-cgroup-pod';
import { createDispatchedCheckpoint, createNamespace, createPod, getCheckpoint, setContainerRunning, startTestCluster, waitForPhase, type TestCluster } from './test/test-cluster';

jest.setTimeout(300_000);

const ROOT = path.resolve(__dirname, '..');
const BUCKET = 'agent-upload';
let cluster: TestCluster;
let minio: Minio;
let s3: S3Client;
let tmp: string;
const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
const { privateKey, publicKey } = generateKeyPairSync('ed25519');

beforeAll(async () => {
  [cluster, minio] = await Promise.all([startTestCluster(), startMinio()]);
  await minio.createBucket(BUCKET);
  s3 = new S3Client({ endpoint: minio.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: minio.s3.accessKeyId!, secretAccessKey: minio.s3.secretAccessKey! } });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-agent-upload-'));
}, 900_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const c of cleanups.reverse()) await c();
  s3?.destroy();
  await Promise.all([cluster?.stop(), minio?.stop()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** The Secret as the kubelet mounts it, pointing the agent at `endpoint`. */
function secretDir(name: string, endpoint: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.writeFileSync(path.join(dir, 's3-access-key-id'), minio.s3.accessKeyId!);
  fs.writeFileSync(path.join(dir, 's3-secret-access-key'), minio.s3.secretAccessKey!);
  fs.writeFileSync(path.join(dir, 's3-endpoint'), endpoint);
  fs.writeFileSync(path.join(dir, 'signing-key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return dir;
}

async function expectRunningThawedUntraced(ctr: FakeContainer): Promise<void> {
  expect(freezerState(ctr.freezer)).toBe('thawed');
  expect(tracedThreads(ctr.pid)).toEqual([]);
  const a = ctr.state();
  const b = await waitFor('the counter to move', () => (ctr.state().counter > a.counter ? ctr.state() : undefined), 5000);
  expect(b.ok).toBe(true);
}

async function podWithContainer(ns: string, name: string, node: string): Promise<{ uid: string; ctr: FakeContainer }> {
  const pod = await createPod(cluster.admin, ns, name, node);
  const uid = pod.metadata?.uid as string;
  const ctr = await startFakeContainer('v2', uid);
  cleanups.push(() => ctr.destroy());
  await setContainerRunning(cluster.admin, pod, ctr.containerID);
  return { uid, ctr };
}

describe('the agent killed in the middle of an upload', () => {
  const NODE = 'node-up';
  const ns = 'team-up';
  let proxy: StallProxy;

  function startAgentChild(storageRoot: string, stateDir: string, secret: string, log: string): ChildProcess {
    const out = fs.openSync(log, 'a');
    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'dist', 'node-agent', 'main.js'), '--node-name', NODE, '--pod-name', 'cryopod-agent-u1', '--storage-root', storageRoot, '--state-dir', stateDir, '--port', '0', '--bind', '127.0.0.1', '--store-url', `s3://${BUCKET}/cluster`, '--store-secret-dir', secret, '--store-retry-seconds', '120'],
      { env: { ...process.env, KUBECONFIG: cluster.agentKubeconfig }, stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    children.push(child);
    return child;
  }

  test('the next agent resumes the upload: Succeeded under the first claim, files stored whole not sent again', async () => {
    // The agent runs as a child: build it (tsc emits dist/ even when some other file has type errors).
    try {
      execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', path.join(ROOT, 'tsconfig.json')], { stdio: 'ignore' });
    } catch {
      // checked below
    }
    expect(fs.existsSync(path.join(ROOT, 'dist', 'node-agent', 'main.js'))).toBe(true);
    const url = new URL(minio.endpoint);
    // The counter's pages image is over 4 MiB and the small files together far under 1 MiB: 1 MiB towards
    // MinIO is inside the pages image's upload, after the files before it in the tree are stored.
    proxy = await startStallProxy({ host: url.hostname, port: Number(url.port) }, 1 << 20);
    cleanups.push(() => proxy.close());
    const storageRoot = path.join(tmp, 'up-images');
    const stateDir = path.join(tmp, 'up-state');
    const log = path.join(tmp, 'up-agent.log');
    const secret = secretDir('up-secret', proxy.endpoint);

    await createNamespace(cluster.admin, ns);
    const { uid, ctr } = await podWithContainer(ns, 'web', NODE);
    const first = startAgentChild(storageRoot, stateDir, secret, log);
    await createDispatchedCheckpoint(cluster.admin, ns, 'ckpt-up', 'web', NODE, uid);
    await waitFor('the upload to stall at 1 MiB', () => proxy.stalled, 120_000, 50);
    const running = await getCheckpoint(cluster.admin, ns, 'ckpt-up');
    expect(running.status?.phase).toBe('Running');
    const firstClaim = running.status?.claimedBy as string;
    const key = `${ns}/ckpt-up-${running.metadata.uid}`;
    const prefix = `cluster/${key}/`;
    // What the store holds at the kill: the upload marker and some files whole, not the seal.
    const before = new Map(((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((o) => [o.Key!.slice(prefix.length), o.LastModified!.getTime()]));
    expect([...before.keys()]).toContain('.cryopod-upload');
    expect([...before.keys()]).not.toContain('cryopod-seal.json');
    const storedWhole = [...before.keys()].filter((k) => !k.startsWith('.'));
    expect(storedWhole.length).toBeGreaterThan(0);
    expect(fs.readdirSync(path.join(stateDir, NODE, 'uploads'))).toEqual([`${running.metadata.uid}.json`]);

    first.kill('SIGKILL');
    await new Promise((r) => (first.exitCode !== null || first.signalCode !== null ? r(null) : first.once('exit', r)));
    proxy.pass();

    const second = startAgentChild(storageRoot, stateDir, secret, log);
    const cp = await waitForPhase(cluster.admin, ns, 'ckpt-up', ['Succeeded', 'Failed'], 120_000);
    const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
    expect({ phase: cp.status?.phase, reason: ready?.reason, failure: ready?.status === 'True' ? undefined : ready?.message }).toEqual({ phase: 'Succeeded', reason: 'Succeeded', failure: undefined });
    expect(cp.status?.claimedBy).toBe(firstClaim); // finished under the first claim, never claimed again
    expect(cp.status?.imageLocation).toBe(`s3://${BUCKET}/cluster/${key}`);
    expect(cp.status?.containers?.[0]?.pages).toBeGreaterThan(1000);

    // In the bucket: complete, signed, every file intact; the files stored before the kill not sent again.
    const store = openStore(`s3://${BUCKET}/cluster`, { s3: minio.s3 });
    const dl = path.join(tmp, 'up-dl');
    await store.download(key, dl);
    const seal = await verifySeal(dl, { trusted: [publicKey] });
    expect(seal.files.map((f) => f.path)).toEqual(expect.arrayContaining(['pod.json', 'app/pages-1.img']));
    const after = new Map(((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((o) => [o.Key!.slice(prefix.length), o.LastModified!.getTime()]));
    for (const k of storedWhole) expect({ k, modified: after.get(k) }).toEqual({ k, modified: before.get(k) });
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }))).Uploads ?? []).toEqual([]);
    // Nothing left on the node; the pod runs on.
    expect(fs.existsSync(path.join(storageRoot, ns, `ckpt-up-${cp.metadata.uid}`))).toBe(false);
    expect(fs.readdirSync(path.join(stateDir, NODE, 'uploads'))).toEqual([]);
    await expectRunningThawedUntraced(ctr);

    second.kill('SIGTERM');
    await new Promise((r) => (second.exitCode !== null ? r(null) : second.once('exit', r)));
  });
});

describe('the store killed in the middle of an upload and started again', () => {
  const NODE = 'node-kill';
  const ns = 'team-kill';

  test('the Checkpoint completes after retries, every byte in the bucket', async () => {
    const url = new URL(minio.endpoint);
    const proxy = await startStallProxy({ host: url.hostname, port: Number(url.port) }, 1 << 20);
    cleanups.push(() => proxy.close());
    const agent = new Agent(
      { nodeName: NODE, podName: 'agent-kill', storageRoot: path.join(tmp, 'kill-images'), stateDir: path.join(tmp, 'kill-state'), port: 0, bind: '127.0.0.1', kubeconfig: cluster.agentKubeconfig, freezeMode: 'native', concurrency: 1, storeUrl: `s3://${BUCKET}/cluster`, storeSecretDir: secretDir('kill-secret', proxy.endpoint), storeRetrySeconds: 120 },
      { log: () => undefined },
    );
    await agent.start();
    cleanups.push(() => agent.stop());
    await waitFor('the agent to list its work', () => agent.ready(), 10_000);
    await createNamespace(cluster.admin, ns);
    const { uid, ctr } = await podWithContainer(ns, 'web', NODE);
    await createDispatchedCheckpoint(cluster.admin, ns, 'ckpt-kill', 'web', NODE, uid);
    await waitFor('the upload to be 1 MiB in', () => proxy.stalled, 120_000, 50);
    // MinIO dies with the upload in flight (SIGKILL), the held bytes then meet a dead server; a moment later it is back.
    await minio.kill();
    proxy.pass();
    expect((await getCheckpoint(cluster.admin, ns, 'ckpt-kill')).status?.phase).toBe('Running');
    await minio.start();
    const cp = await waitForPhase(cluster.admin, ns, 'ckpt-kill', ['Succeeded', 'Failed'], 180_000);
    const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
    expect({ phase: cp.status?.phase, reason: ready?.reason, failure: ready?.status === 'True' ? undefined : ready?.message }).toEqual({ phase: 'Succeeded', reason: 'Succeeded', failure: undefined });
    const key = `${ns}/ckpt-kill-${cp.metadata.uid}`;
    const dl = path.join(tmp, 'kill-dl');
    await openStore(`s3://${BUCKET}/cluster`, { s3: minio.s3 }).download(key, dl);
    const seal = await verifySeal(dl, { trusted: [publicKey] });
    expect(seal.files.map((f) => f.path)).toEqual(expect.arrayContaining(['pod.json', 'app/pages-1.img']));
    expect(fs.existsSync(path.join(tmp, 'kill-images', ns, `ckpt-kill-${cp.metadata.uid}`))).toBe(false);
    await expectRunningThawedUntraced(ctr);
  });
});

describe('too little room on the storage root', () => {
  const NODE = 'node-full';
  const ns = 'team-full';
  let agent: Agent;
  let mnt: string;

  beforeAll(async () => {
    mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-full-'));
    // 1 MiB: the counter alone holds 4 MiB of written heap.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'cryopod-full-test', mnt]);
    cleanups.push(() => {
      execFileSync('umount', [mnt]);
      fs.rmdirSync(mnt);
    });
    agent = new Agent(
      { nodeName: NODE, podName: 'agent-full', storageRoot: mnt, stateDir: path.join(tmp, 'full-state'), port: 0, bind: '127.0.0.1', kubeconfig: cluster.agentKubeconfig, freezeMode: 'native', concurrency: 1 },
      { log: () => undefined },
    );
    await agent.start();
    cleanups.push(() => agent.stop());
    await waitFor('the agent to list its work', () => agent.ready(), 10_000);
  });

  test('Failed/InsufficientStorage with both figures, before anything is frozen', async () => {
    await createNamespace(cluster.admin, ns);
    const { uid, ctr } = await podWithContainer(ns, 'db', NODE);
    await createDispatchedCheckpoint(cluster.admin, ns, 'ckpt-full', 'db', NODE, uid);
    const cp = await waitForPhase(cluster.admin, ns, 'ckpt-full', ['Succeeded', 'Failed']);
    const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
    expect({ phase: cp.status?.phase, reason: ready?.reason }).toEqual({ phase: 'Failed', reason: 'InsufficientStorage' });
    expect(ready?.message).toMatch(new RegExp(`filesystem of ${mnt} has [0-9.]+ MiB free, the dump needs about [4-9][0-9.]* MiB \\(app [0-9.]+ MiB\\); nothing was frozen`));
    // Never journalled for a freeze (the journal is written before any freeze), nothing written.
    expect(fs.readdirSync(path.join(tmp, 'full-state', NODE, 'freezes'))).toEqual([]);
    expect(fs.readdirSync(mnt)).toEqual([]);
    await expectRunningThawedUntraced(ctr);
  });
});
