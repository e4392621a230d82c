/**
 * The list-watch (kube/list-watch.ts over the operator's collectionSource) must not go deaf (client-node's
 * ListWatch stops for good on a non-410 error). Here the operator's ClusterRoleBinding is removed while it
 * watches: its relists get 403s; once the binding is back, it recovers by itself and reports the object
 * created meanwhile.
 */
import { ListWatch } from '../../kube';
import { collectionSource } from '../kube/watch-source';
import { KubeClient } from '../kube/client';
import { crPath } from '../kube/paths';
import { loadKubeConfig } from '../operator';
import { createCheckpoint, setup, waitFor, type Env } from './test-fixture';

let env: Env;
beforeAll(async () => {
  env = await setup();
});
afterAll(() => env?.stop());

test('survives 403s on relist and picks up what happened meanwhile', async () => {
  const seen = new Set<string>();
  const errors: string[] = [];
  const w = new ListWatch({
    source: collectionSource(new KubeClient(loadKubeConfig(env.operatorKubeconfig)), crPath('checkpoints')),
    resyncSeconds: 1, // every watch ends after 1 s and is followed by a list
    minBackoffMs: 50,
    maxBackoffMs: 200,
    onEvent: (_t, o) => seen.add(o.metadata!.name!),
    log: (m) => errors.push(m),
  });
  w.start();
  try {
    await createCheckpoint(env.admin, 'default', 'before', { podName: 'p' });
    await waitFor('before seen', async () => seen.has('before'));

    const binding = await env.admin.get<Record<string, unknown>>('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/cryopod-operator');
    await env.admin.delete('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/cryopod-operator');
    await waitFor('a 403', async () => errors.some((e) => / 403 /.test(e)));
    await createCheckpoint(env.admin, 'default', 'meanwhile', { podName: 'p' });
    // Not seen while forbidden: two more relists (403s) after it was created have failed to report it.
    const forbidden = () => errors.filter((e) => / 403 /.test(e)).length;
    const after = forbidden();
    await waitFor('two more 403s', async () => forbidden() >= after + 2);
    expect(seen.has('meanwhile')).toBe(false);

    const { metadata, ...rest } = binding as { metadata: { name: string } };
    await env.admin.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', { ...rest, metadata: { name: metadata.name } });
    await waitFor('meanwhile seen after recovery', async () => seen.has('meanwhile'), 15000);
  } finally {
    await w.stop();
  }
});
