/** The worker's decisions against a fake API (the real server is in agent.integration.test.ts). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Checkpoint } from '../crds/types';
import { CheckpointWorker } from './checkpoint-worker';
import { Dumper } from './dumper';
import { FreezeJournal } from './freeze-journal';
import { makeIdentity } from './identity';
import { AgentApi, ConflictError, EventInput } from './kube';
import { AgentMetrics } from './metrics';
import { ImageStore } from './storage';

const UID = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';

function checkpoint(status: Checkpoint['status'], node = 'n1'): Checkpoint {
  return { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name: 'c', namespace: 'ns', uid: UID, resourceVersion: '1', labels: { 'cryopod.io/node': node } }, spec: { podName: 'p' }, status };
}

class FakeApi implements AgentApi {
  writes: Checkpoint[] = [];
  events: EventInput[] = [];
  conflictOnce = false;
  constructor(public cp: Checkpoint) {}
  async listCustom<T>(): Promise<{ items: T[]; resourceVersion: string }> {
    return { items: [], resourceVersion: '1' };
  }
  async watchCustom(): Promise<{ abort(): void }> {
    return { abort: () => undefined };
  }
  async getCheckpoint(): Promise<Checkpoint> {
    return this.cp;
  }
  async replaceCheckpointStatus(cp: Checkpoint): Promise<Checkpoint> {
    if (this.conflictOnce) {
      this.conflictOnce = false;
      throw new ConflictError('409');
    }
    if (cp.metadata.resourceVersion !== this.cp.metadata.resourceVersion) throw new ConflictError('stale');
    this.writes.push(cp);
    this.cp = { ...cp, metadata: { ...cp.metadata, resourceVersion: String(Number(cp.metadata.resourceVersion) + 1) } };
    return this.cp;
  }
  async getRestore(): Promise<undefined> {
    return undefined;
  }
  async replaceRestoreStatus(): Promise<never> {
    throw new Error('not used');
  }
  async getPod(): Promise<undefined> {
    return undefined;
  }
  async createEvent(e: EventInput): Promise<void> {
    this.events.push(e);
  }
}

let tmp: string;
let dumps = 0;
function worker(api: FakeApi, bootId = 'b2'): CheckpointWorker {
  const journal = new FreezeJournal(path.join(tmp, 'state'), {});
  const dumper = new Dumper(journal, 'native', async () => {
    dumps++;
    throw new Error('not reached');
  });
  return new CheckpointWorker({ api, identity: makeIdentity('n1', 'agent', bootId), store: new ImageStore(path.join(tmp, 'img')), dumper, mounts: {}, metrics: new AgentMetrics('n1'), log: () => undefined });
}

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-worker-'));
  dumps = 0;
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a claim that loses (409) is dropped: nothing is written or dumped', async () => {
  const api = new FakeApi(checkpoint({ phase: 'Dispatched', nodeName: 'n1' }));
  api.conflictOnce = true;
  await worker(api).handle('ns/c');
  expect(api.writes).toEqual([]);
  expect(api.events).toEqual([]);
  expect(dumps).toBe(0);
});

test('a claim that wins moves Dispatched → Running with claimedBy, then finishes (here: PodNotFound)', async () => {
  const api = new FakeApi(checkpoint({ phase: 'Dispatched', nodeName: 'n1' }));
  await worker(api).handle('ns/c');
  expect(api.writes.map((w) => [w.status?.phase, w.status?.claimedBy])).toEqual([
    ['Running', 'n1/agent/b2'],
    ['Failed', 'n1/agent/b2'],
  ]);
  expect(api.writes[1].status?.nodeName).toBe('n1'); // the operator's fields are kept
  expect(api.writes[1].status?.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'False', reason: 'PodNotFound' });
  expect(api.events.map((e) => [e.reason, e.type])).toEqual([['PodNotFound', 'Warning']]);
});

test('work Running under an earlier instance on this node is failed with AgentRestarted, not redone', async () => {
  const api = new FakeApi(checkpoint({ phase: 'Running', nodeName: 'n1', claimedBy: 'n1/agent/b1' }));
  fs.mkdirSync(path.join(tmp, 'img', 'ns', `c-${UID}`, 'app'), { recursive: true });
  await worker(api).handle('ns/c');
  expect(api.writes).toHaveLength(1);
  expect(api.writes[0].status).toMatchObject({ phase: 'Failed', claimedBy: 'n1/agent/b1' });
  expect(api.writes[0].status?.conditions?.[0]).toMatchObject({ reason: 'AgentRestarted' });
  expect(api.writes[0].status?.conditions?.[0].message).toMatch(/n1\/agent\/b1.*not retried/);
  expect(fs.existsSync(path.join(tmp, 'img', 'ns', `c-${UID}`))).toBe(false);
  expect(dumps).toBe(0);
});

test('another node\'s work, another node\'s claim, and finished work are left alone', async () => {
  for (const cp of [
    checkpoint({ phase: 'Dispatched' }, 'n2'),
    checkpoint({ phase: 'Running', claimedBy: 'n2/agent/b1' }),
    checkpoint({ phase: 'Succeeded', claimedBy: 'n1/agent/b1' }),
    checkpoint({ phase: 'Pending' }),
  ]) {
    const api = new FakeApi(cp);
    await worker(api).handle('ns/c');
    expect(api.writes).toEqual([]);
  }
});
