/**
 * Integration-test helper: the restore pod as the operator makes it (operator/restore-pod.ts), from the
 * checkpoint's saved pod.json in the agent's storage root, created in the test cluster.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { V1Pod } from '@kubernetes/client-node';
import { Checkpoint, Restore } from '../../crds/types';
import { buildRestorePod } from '../../operator/restore-pod';
import { createPodObject } from './test-cluster';

export async function createRestorePod(admin: string, cp: Checkpoint, r: Restore, ns: string, nodeName: string, podName: string): Promise<V1Pod> {
  const dir = new URL(cp.status?.imageLocation as string).pathname;
  const saved = JSON.parse(fs.readFileSync(path.join(dir, 'pod.json'), 'utf8'));
  const obj = buildRestorePod({
    saved,
    namespace: ns,
    podName,
    nodeName,
    restore: { name: r.metadata.name as string, uid: r.metadata.uid as string },
    checkpointName: cp.metadata.name as string,
    stubImage: 'cryopod-test/cryopod:1',
    stubSourcePath: '/opt/cryopod/cryopod-stub',
  });
  return createPodObject(admin, obj);
}
