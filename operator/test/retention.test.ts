/**
 * Retention with keep-last 2 against the real API server: the agent's success is simulated by patching
 * status as the agent identity, with image files in a temp storage root. The third Succeeded checkpoint of
 * a pod makes the operator delete the first (and, through the finalizer, its images); another pod's
 * checkpoints are not touched. TTL: a finished checkpoint goes when its time is up.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Checkpoint } from '../../crds/types';
import { agentClaim, agentSucceed, createCheckpoint, createNamespace, createPod, getCheckpoint, reconcileLog, setup, waitFor, type Env } from './test-fixture';
import { crPath } from '../kube/paths';

let env: Env;
const NS = 'retention';
beforeAll(async () => {
  env = await setup();
  await createNamespace(env.admin, NS);
  await createPod(env.admin, NS, 'web', 'node-a');
  await createPod(env.admin, NS, 'db', 'node-a');
});
afterAll(() => env?.stop());

async function checkpointOnce(name: string, pod: string, finishedAt: Date): Promise<string> {
  await createCheckpoint(env.admin, NS, name, { podName: pod });
  const ck = await waitFor(`${name} Dispatched`, async () => {
    const c = await getCheckpoint(env.admin, NS, name);
    return c.status?.phase === 'Dispatched' && c;
  });
  const dir = path.join(env.storageRoot, NS, `${name}-${ck.metadata.uid}`);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'pages-1.img'), 'x');
  await agentSucceed(env.agent, await agentClaim(env.agent, ck, 'node-a'), pathToFileURL(dir).href, finishedAt);
  return dir;
}

const names = async () => (await env.admin.get<{ items: Checkpoint[] }>(crPath('checkpoints', NS))).items.map((c) => c.metadata.name).sort();

test('keep-last 2: the third Succeeded checkpoint of a pod deletes the first and its images', async () => {
  const log = reconcileLog();
  const op = await env.startOperator({ keepLast: 2 }, log.hooks);
  const t = Date.now();
  const d1 = await checkpointOnce('web-1', 'web', new Date(t - 3000));
  const d2 = await checkpointOnce('web-2', 'web', new Date(t - 2000));
  const dDb = await checkpointOnce('db-1', 'db', new Date(t - 5000));
  // Watched until the operator has reconciled each of them after all three were Succeeded: a touch (a
  // label) of each is a change it must look at, and a reconcile that starts after it sees all three.
  const since = Date.now();
  for (const n of ['web-1', 'web-2', 'db-1']) await env.admin.patch(crPath('checkpoints', NS, n), { metadata: { labels: { touched: 'yes' } } });
  for (const n of ['web-1', 'web-2', 'db-1']) await log.since(`${NS}/${n}`, since);
  expect(await names()).toEqual(['db-1', 'web-1', 'web-2']); // two per pod: nothing to do yet
  const d3 = await checkpointOnce('web-3', 'web', new Date(t - 1000));

  await waitFor('web-1 deleted', async () => !(await names()).includes('web-1'));
  await expect(fs.stat(d1)).rejects.toThrow(/ENOENT/);
  for (const d of [d2, d3, dDb]) expect((await fs.stat(d)).isDirectory()).toBe(true);
  expect(await names()).toEqual(['db-1', 'web-2', 'web-3']);
  await op.stop();
});

test('TTL after finish: a finished checkpoint is deleted with its images when its time is up', async () => {
  const op = await env.startOperator({ ttlSecondsAfterFinished: 2 });
  const dir = await checkpointOnce('ttl-1', 'db', new Date());
  expect(await names()).toContain('ttl-1');
  await waitFor('ttl-1 deleted', async () => !(await names()).includes('ttl-1'), 10000);
  await expect(fs.stat(dir)).rejects.toThrow(/ENOENT/);
  await op.stop();
});
