/** The orphan sweep against a fake API and a real file store: only images no Checkpoint names, once old enough. */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { openStore } from '../store';
import { keyPair, makeCheckpoint, tempDir } from '../store/test/fixture';
import { DEFAULTS } from './config';
import { crPath } from './kube/paths';
import { sweepOrphans } from './orphan-sweep';
import { FakeClient } from './test/test-fake-client';

test('removes the images of deleted Checkpoints, keeps those that exist and fresh uploads', async () => {
  const tmp = await tempDir('cryopod-sweep-');
  try {
    const store = openStore(`file://${path.join(tmp, 'store')}`);
    const src = path.join(tmp, 'src');
    await makeCheckpoint(src, { key: keyPair().privateKey });
    const client = new FakeClient(() => new Date());
    const live = client.seed(crPath('checkpoints', 'team-a'), { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name: 'kept', namespace: 'team-a' }, spec: { podName: 'p' } }) as unknown as { metadata: { uid: string } };
    await store.upload(`team-a/kept-${live.metadata.uid}`, src);
    await store.upload('team-a/gone-0000', src);
    const ctx = { client: client.asClient, cfg: { ...DEFAULTS, namespace: 'team-a' }, log: () => undefined };
    // Too fresh: an upload in progress must not be taken for an orphan.
    expect(await sweepOrphans(ctx, store)).toEqual([]);
    expect(await sweepOrphans(ctx, store, 0)).toEqual(['team-a/gone-0000']);
    expect((await store.list()).map((c) => c.key)).toEqual([`team-a/kept-${live.metadata.uid}`]);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
});
