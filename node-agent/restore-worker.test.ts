/** The restore worker's decisions before any process is touched, against a fake API (the real server and real stubs are in restore.integration.test.ts). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { V1Pod } from '@kubernetes/client-node';
import { Checkpoint, Restore } from '../crds/types';
import { makeIdentity } from './identity';
import { AgentApi, ConflictError, EventInput } from './kube';
import { AgentMetrics } from './metrics';
import { RestoreWorker } from './restore-worker';
import { ImageStore } from './storage';
import type { RemoteStore } from './remote-store';
import { openStore, publishCheckpoint } from '../store';
import { keyPair, makeCheckpoint } from '../store/test/fixture';

const RUID = '2c5f39cb-3fb2-11d2-883f-0016d3cca427';
const CUID = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
let tmp: string;
let store: ImageStore;

function restore(status: Restore['status'], node = 'n1'): Restore {
  return { apiVersion: 'cryopod.io/v1alpha1', kind: 'Restore', metadata: { name: 'r', namespace: 'ns', uid: RUID, resourceVersion: '1', creationTimestamp: new Date().toISOString(), labels: { 'cryopod.io/node': node } }, spec: { checkpointName: 'c' }, status };
}

function checkpoint(imageLocation?: string, phase: 'Succeeded' | 'Failed' = 'Succeeded'): Checkpoint {
  return { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name: 'c', namespace: 'ns', uid: CUID }, spec: { podName: 'p' }, status: { phase, imageLocation } };
}

function pod(owner = RUID, node = 'n1'): V1Pod {
  return { metadata: { name: 'c-restored', namespace: 'ns', uid: 'aaaaaaaa-2fa1-11d2-883f-0016d3cca427', ownerReferences: [{ apiVersion: 'cryopod.io/v1alpha1', kind: 'Restore', name: 'r', uid: owner }] }, spec: { nodeName: node, containers: [{ name: 'app' }] } };
}

class FakeApi implements AgentApi {
  writes: Restore[] = [];
  events: EventInput[] = [];
  conflictOnClaim = false;
  constructor(public r: Restore, public cp?: Checkpoint, public p?: V1Pod) {}
  async listCustom<T>(): Promise<{ items: T[]; resourceVersion: string }> {
    return { items: [], resourceVersion: '1' };
  }
  async watchCustom(): Promise<{ abort(): void }> {
    return { abort: () => undefined };
  }
  async getCheckpoint(): Promise<Checkpoint | undefined> {
    return this.cp;
  }
  async replaceCheckpointStatus(): Promise<never> {
    throw new Error('not used');
  }
  async getRestore(): Promise<Restore> {
    return this.r;
  }
  async replaceRestoreStatus(r: Restore): Promise<Restore> {
    if (this.conflictOnClaim) throw new ConflictError('409');
    if (r.metadata.resourceVersion !== this.r.metadata.resourceVersion) throw new ConflictError('stale');
    this.writes.push(r);
    this.r = { ...r, metadata: { ...r.metadata, resourceVersion: String(Number(r.metadata.resourceVersion) + 1) } };
    return this.r;
  }
  async getPod(): Promise<V1Pod | undefined> {
    return this.p;
  }
  async createEvent(e: EventInput): Promise<void> {
    this.events.push(e);
  }
}

let morphs = 0;
function worker(api: FakeApi, bootId = 'b2', remote?: RemoteStore): RestoreWorker {
  return new RestoreWorker({
    api,
    identity: makeIdentity('n1', 'agent', bootId),
    store,
    remote,
    mounts: {},
    metrics: new AgentMetrics('n1'),
    log: () => undefined,
    restore: async () => {
      morphs++;
      return 1;
    },
    pollMs: 10,
  });
}

function cpDir(ns = 'ns', name = 'c', uid = CUID): string {
  const d = path.join(store.root, ns, `${name}-${uid}`, 'app');
  fs.mkdirSync(d, { recursive: true });
  return path.dirname(d);
}

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-rw-'));
  store = new ImageStore(path.join(tmp, 'img'));
  morphs = 0;
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function outcome(api: FakeApi, remote?: RemoteStore): Promise<{ phase?: string; reason?: string; message?: string }> {
  await worker(api, 'b2', remote).handle('ns/r');
  const ready = api.r.status?.conditions?.find((c) => c.type === 'Ready');
  return { phase: api.r.status?.phase, reason: ready?.reason, message: ready?.message };
}

test('claims Dispatched work with its resourceVersion, then a missing checkpoint is Failed/CheckpointNotFound with an Event', async () => {
  const api = new FakeApi(restore({ phase: 'Dispatched', podName: 'c-restored' }));
  expect(await outcome(api)).toMatchObject({ phase: 'Failed', reason: 'CheckpointNotFound' });
  expect(api.writes[0].status).toMatchObject({ phase: 'Running', claimedBy: expect.stringMatching(/^n1\/agent\/b2$/) });
  expect(api.events.map((e) => [e.reason, e.type])).toEqual([['CheckpointNotFound', 'Warning']]);
  expect(morphs).toBe(0);
});

test('a lost claim (409) writes nothing and does nothing', async () => {
  const api = new FakeApi(restore({ phase: 'Dispatched' }), checkpoint(`file://${cpDir()}`), pod());
  api.conflictOnClaim = true;
  await worker(api).handle('ns/r');
  expect(api.writes).toEqual([]);
  expect(api.events).toEqual([]);
});

test('work for another node, or already finished, is left alone', async () => {
  for (const r of [restore({ phase: 'Dispatched' }, 'n2'), restore({ phase: 'Succeeded' })]) {
    const api = new FakeApi(r);
    await worker(api).handle('ns/r');
    expect(api.writes).toEqual([]);
  }
});

test('a checkpoint that is not Succeeded is Failed/CheckpointNotReady', async () => {
  const api = new FakeApi(restore({ phase: 'Dispatched' }), checkpoint(undefined, 'Failed'), pod());
  expect(await outcome(api)).toMatchObject({ phase: 'Failed', reason: 'CheckpointNotReady' });
});

test('an image location outside this checkpoint\'s own directory (another namespace) is refused', async () => {
  const other = cpDir('other-team', 'c', CUID);
  const api = new FakeApi(restore({ phase: 'Dispatched' }), checkpoint(`file://${other}`), pod());
  const o = await outcome(api);
  expect(o).toMatchObject({ phase: 'Failed', reason: 'CheckpointNotFound' });
  expect(o.message).toMatch(/is not the directory of checkpoint ns\/c/);
  const outside = new FakeApi(restore({ phase: 'Dispatched' }), checkpoint(`file://${tmp}`), pod());
  expect((await outcome(outside)).message).toMatch(/outside the storage root/);
});

test('a pod not owned by this Restore, or on another node, is never touched', async () => {
  const a = new FakeApi(restore({ phase: 'Dispatched' }), checkpoint(`file://${cpDir()}`), pod('99999999-2fa1-11d2-883f-0016d3cca427'));
  expect(await outcome(a)).toMatchObject({ phase: 'Failed', reason: 'RestoreFailed', message: expect.stringMatching(/not owned by Restore r/) });
  const b = new FakeApi(restore({ phase: 'Dispatched' }), checkpoint(`file://${cpDir()}`), pod(RUID, 'n2'));
  expect(await outcome(b)).toMatchObject({ phase: 'Failed', reason: 'RestoreFailed', message: expect.stringMatching(/on node n2/) });
  expect(morphs).toBe(0);
});

test('a container without images fails before any waiting', async () => {
  const dir = cpDir();
  fs.rmSync(path.join(dir, 'app'), { recursive: true });
  const api = new FakeApi(restore({ phase: 'Dispatched' }), checkpoint(`file://${dir}`), pod());
  expect(await outcome(api)).toMatchObject({ phase: 'Failed', reason: 'RestoreFailed', message: expect.stringMatching(/no images for container app/) });
});

test('stubs that never start: Failed/Timeout with the last reason, once the Restore\'s timeout is near', async () => {
  const r = restore({ phase: 'Dispatched' });
  r.spec.timeoutSeconds = 3;
  const api = new FakeApi(r, checkpoint(`file://${cpDir()}`), pod());
  const t0 = Date.now();
  const o = await outcome(api);
  expect(o).toMatchObject({ phase: 'Failed', reason: 'Timeout', message: expect.stringMatching(/container app has no containerID yet/) });
  expect(Date.now() - t0).toBeLessThan(3000);
  expect(morphs).toBe(0);
});

test('Running under an earlier instance on this node: Failed/AgentRestarted, not retried, claim kept', async () => {
  const api = new FakeApi(restore({ phase: 'Running', claimedBy: 'n1/agent/b1' }));
  expect(await outcome(api)).toMatchObject({ phase: 'Failed', reason: 'AgentRestarted', message: expect.stringContaining('n1/agent/b1') });
  expect(api.r.status?.claimedBy).toBe('n1/agent/b1');
  expect(morphs).toBe(0);
});

describe('from an image store (--store-url; a file:// store here)', () => {
  const signer = keyPair();
  async function published(): Promise<{ remote: RemoteStore; url: string; root: string }> {
    const root = path.join(tmp, 'remote');
    const remote: RemoteStore = { store: openStore(`file://${root}`), trustedKeys: [signer.publicKey], allowUnsigned: false };
    const src = path.join(tmp, 'src');
    await makeCheckpoint(src, { key: signer.privateKey });
    const { url } = await publishCheckpoint(remote.store, `ns/c-${CUID}`, src, { signingKey: signer.privateKey });
    return { remote, url, root };
  }

  test('a tampered byte in the store: Failed/ImageCorrupt naming the file, nothing morphed, no local copy left', async () => {
    const { remote, url, root } = await published();
    const file = path.join(root, 'ns', `c-${CUID}`, 'app', 'pages-1.img');
    const data = fs.readFileSync(file);
    data[100] ^= 1;
    fs.writeFileSync(file, data);
    const api = new FakeApi(restore({ phase: 'Dispatched', podName: 'c-restored' }), checkpoint(url), pod());
    expect(await outcome(api, remote)).toMatchObject({ phase: 'Failed', reason: 'ImageCorrupt', message: expect.stringMatching(/refused \(Hash\): app\/pages-1\.img: sha256/) });
    expect(morphs).toBe(0);
    expect(fs.existsSync(path.join(store.root, 'ns', `c-${CUID}`))).toBe(false);
  });

  test('the download shows its progress in status.transfer, up to every byte of the checkpoint', async () => {
    const { remote, url, root } = await published();
    const r = restore({ phase: 'Dispatched', podName: 'c-restored' });
    r.spec.timeoutSeconds = 3; // no stub ever starts here: the wait after the download ends at the deadline
    const api = new FakeApi(r, checkpoint(url), pod());
    expect(await outcome(api, remote)).toMatchObject({ phase: 'Failed', reason: 'Timeout' });
    const sizes = (dir: string): number => fs.readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? sizes(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size), 0);
    const total = sizes(path.join(root, 'ns', `c-${CUID}`));
    const transfers = api.writes.map((w) => w.status?.transfer).filter((t) => t !== undefined);
    expect(transfers.length).toBeGreaterThan(0);
    expect(transfers[transfers.length - 1]).toEqual({ doneBytes: total, totalBytes: total });
    expect(morphs).toBe(0);
  });

  test('signed by a key this node does not trust: Failed/ImageCorrupt (UnknownKey)', async () => {
    const { remote, url } = await published();
    const api = new FakeApi(restore({ phase: 'Dispatched', podName: 'c-restored' }), checkpoint(url), pod());
    expect(await outcome(api, { ...remote, trustedKeys: [keyPair().publicKey] })).toMatchObject({ phase: 'Failed', reason: 'ImageCorrupt', message: expect.stringMatching(/UnknownKey/) });
    expect(morphs).toBe(0);
  });
});
