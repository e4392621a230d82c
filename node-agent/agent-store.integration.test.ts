/**
 * The node agent publishing to a real S3 server (MinIO on loopback) against a real kube-apiserver:
 * a dispatched Checkpoint ends Succeeded only with its images in the bucket (sealed, signed with the key
 * from the mounted Secret directory, verifiable with its public half), status.imageLocation naming them,
 * and the node's local copy removed; with the store unreachable the Checkpoint ends Failed/UploadFailed
 * and the node keeps nothing.
 */
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { verifySeal } from '../images/seal-verify';
import { openStore } from '../store';
import { startMinio, type Minio } from '../store/test/minio';
import { waitFor } from '../testenv';
import { Agent } from './agent';
import { startFakeContainer } from './test/test-cgroup-pod';
import { createDispatchedCheckpoint, createNamespace, createPod, setContainerRunning, startTestCluster, waitForPhase, type TestCluster } from './test/test-cluster';

jest.setTimeout(240_000);

const NODE = 'node-s3';
const ns = 'team-s3';
const BUCKET = 'agent-images';
let cluster: TestCluster;
let minio: Minio;
let agent: Agent;
let tmp: string;
const cleanups: Array<() => Promise<void> | void> = [];
const { privateKey, publicKey } = generateKeyPairSync('ed25519');

beforeAll(async () => {
  [cluster, minio] = await Promise.all([startTestCluster(), startMinio()]);
  await minio.createBucket(BUCKET);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-agent-s3-'));
  // The Secret as the kubelet mounts it: one file per key.
  const secret = path.join(tmp, 'secret');
  fs.mkdirSync(secret, { mode: 0o700 });
  fs.writeFileSync(path.join(secret, 's3-access-key-id'), minio.s3.accessKeyId!);
  fs.writeFileSync(path.join(secret, 's3-secret-access-key'), minio.s3.secretAccessKey!);
  fs.writeFileSync(path.join(secret, 's3-endpoint'), minio.endpoint);
  fs.writeFileSync(path.join(secret, 'signing-key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await createNamespace(cluster.admin, ns);
  agent = new Agent(
    {
      nodeName: NODE,
      podName: 'agent-s3',
      storageRoot: path.join(tmp, 'images'),
      stateDir: path.join(tmp, 'state'),
      port: 0,
      bind: '127.0.0.1',
      kubeconfig: cluster.agentKubeconfig,
      freezeMode: 'native',
      concurrency: 1,
      storeUrl: `s3://${BUCKET}/cluster`,
      storeSecretDir: secret,
      storeRetrySeconds: 5,
    },
    { log: () => undefined },
  );
  await agent.start();
  await waitFor('the agent to list its work', () => agent.ready(), 10_000);
}, 900_000);

afterAll(async () => {
  await agent?.stop();
  for (const c of cleanups.reverse()) await c();
  await Promise.all([cluster?.stop(), minio?.stop()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function checkpointPod(name: string): Promise<{ cp: Awaited<ReturnType<typeof waitForPhase>>; uid: string }> {
  const pod = await createPod(cluster.admin, ns, `web-${name}`, NODE);
  const uid = pod.metadata?.uid as string;
  const ctr = await startFakeContainer('v2', uid);
  cleanups.push(() => ctr.destroy());
  await setContainerRunning(cluster.admin, pod, ctr.containerID);
  await createDispatchedCheckpoint(cluster.admin, ns, name, `web-${name}`, NODE, uid);
  return { cp: await waitForPhase(cluster.admin, ns, name, ['Succeeded', 'Failed']), uid };
}

test('Succeeded only with the images in the bucket, signed; the local copy is gone', async () => {
  const { cp, uid } = await checkpointPod('ckpt-s3');
  const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
  expect({ phase: cp.status?.phase, reason: ready?.reason, failure: ready?.status === 'True' ? undefined : ready?.message }).toEqual({ phase: 'Succeeded', reason: 'Succeeded', failure: undefined });
  const key = `${ns}/ckpt-s3-${cp.metadata.uid}`;
  expect(cp.status?.imageLocation).toBe(`s3://${BUCKET}/cluster/${key}`);
  expect(cp.status?.durations?.uploadSeconds).toBeGreaterThan(0);
  // Nothing left on the node.
  expect(fs.existsSync(path.join(tmp, 'images', ns, `ckpt-s3-${cp.metadata.uid}`))).toBe(false);
  // In the bucket: sealed, signed by the Secret's key, every file intact.
  const store = openStore(`s3://${BUCKET}/cluster`, { s3: minio.s3 });
  expect(await store.exists(key)).toBe(true);
  const dl = path.join(tmp, 'dl');
  await store.download(key, dl);
  const seal = await verifySeal(dl, { trusted: [publicKey] });
  expect(seal.files.map((f) => f.path)).toEqual(expect.arrayContaining(['pod.json', 'app/cryopod-manifest.json', 'app/pages-1.img']));
  expect(JSON.parse(fs.readFileSync(path.join(dl, 'pod.json'), 'utf8')).metadata.uid).toBe(uid);
});

test('the store down for good: Failed/UploadFailed with the reason, nothing kept on the node', async () => {
  await minio.kill();
  cleanups.push(() => minio.start());
  const { cp } = await checkpointPod('ckpt-down');
  const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
  expect({ phase: cp.status?.phase, reason: ready?.reason }).toEqual({ phase: 'Failed', reason: 'UploadFailed' });
  expect(ready?.message).toMatch(/upload to s3:\/\/agent-images\/cluster: .*kept failing/);
  expect(fs.existsSync(path.join(tmp, 'images', ns, `ckpt-down-${cp.metadata.uid}`))).toBe(false);
});
