/**
 * The chart's RBAC, as the real API server applies it to the operator's and the agent's ServiceAccount
 * identities (client certificates for system:serviceaccount:cryopod-system:...): each is asked by
 * SelfSubjectAccessReview and also tried for real, so a test fails if the chart grants too much or too little.
 */
import { KubeClient, ApiError } from '../kube/client';
import { loadKubeConfig } from '../operator';
import { crPath, podPath } from '../kube/paths';
import { createCheckpoint, createNamespace, createPod, setup, type Env } from './test-fixture';

let env: Env;
let operator: KubeClient;
const NS = 'rbac';
beforeAll(async () => {
  env = await setup();
  operator = new KubeClient(loadKubeConfig(env.operatorKubeconfig));
  await createNamespace(env.admin, NS);
  await createPod(env.admin, NS, 'victim', 'node-a');
  await env.admin.create(`/api/v1/namespaces/${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'token' }, stringData: { k: 'v' } });
});
afterAll(() => env?.stop());

async function can(c: KubeClient, attrs: Record<string, string>): Promise<boolean> {
  const r = await c.create<{ status: { allowed: boolean } }>('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes: { namespace: NS, ...attrs } },
  });
  return r.status.allowed;
}

async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof ApiError) return err.code;
    throw err;
  }
}

const pod = (name: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });

describe('RBAC from helm/cryopod, enforced by the API server', () => {
  test('the operator cannot exec into pods or read secrets', async () => {
    expect(await can(operator, { verb: 'create', resource: 'pods', subresource: 'exec', name: 'victim' })).toBe(false);
    expect(await can(operator, { verb: 'get', resource: 'secrets' })).toBe(false);
    expect(await can(operator, { verb: 'list', resource: 'secrets' })).toBe(false);
    // For real: exec (a POST to the subresource) and reading the secret are refused with 403.
    expect(await code(operator.request('POST', `${podPath(NS, 'victim')}/exec?command=id&stdout=true`))).toBe(403);
    expect(await code(operator.get(`/api/v1/namespaces/${NS}/secrets/token`))).toBe(403);
    expect(await code(operator.get('/api/v1/secrets'))).toBe(403);
  });

  test('the operator can do its job: pods, checkpoints, status, events', async () => {
    expect(await can(operator, { verb: 'create', resource: 'pods' })).toBe(true);
    expect(await can(operator, { verb: 'patch', group: 'cryopod.io', resource: 'checkpoints', subresource: 'status' })).toBe(true);
    expect(await can(operator, { verb: 'update', group: 'cryopod.io', resource: 'restores', subresource: 'finalizers' })).toBe(true);
    expect(await can(operator, { verb: 'create', resource: 'events' })).toBe(true);
    expect(await code(operator.create(podPath(NS), pod('made-by-operator')))).toBe(200);
  });

  test('the agent cannot create pods or read secrets', async () => {
    expect(await can(env.agent, { verb: 'create', resource: 'pods' })).toBe(false);
    expect(await can(env.agent, { verb: 'get', resource: 'secrets' })).toBe(false);
    expect(await can(env.agent, { verb: 'create', resource: 'pods', subresource: 'exec' })).toBe(false);
    expect(await code(env.agent.create(podPath(NS), pod('made-by-agent')))).toBe(403);
    expect(await code(env.agent.get(`/api/v1/namespaces/${NS}/secrets/token`))).toBe(403);
    expect(await code(env.agent.delete(podPath(NS, 'victim')))).toBe(403);
  });

  test('the agent can claim and report work, but not create or delete Checkpoints', async () => {
    const ck = await createCheckpoint(env.admin, NS, 'ck', { podName: 'victim' });
    expect(await code(env.agent.get(crPath('checkpoints', NS, 'ck')))).toBe(200);
    expect(await code(env.agent.patch(crPath('checkpoints', NS, 'ck', 'status'), { metadata: { resourceVersion: ck.metadata.resourceVersion }, status: { phase: 'Running', claimedBy: 'node-a/agent' } }))).toBe(200);
    expect(await code(env.agent.delete(crPath('checkpoints', NS, 'ck')))).toBe(403);
    expect(await code(env.agent.create(crPath('checkpoints', NS), { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name: 'x' }, spec: { podName: 'victim' } }))).toBe(403);
    expect(await can(env.agent, { verb: 'watch', group: 'cryopod.io', resource: 'restores' })).toBe(true);
  });

  test('the agent writes status only: it cannot change a spec, a label or a finalizer', async () => {
    const ck = await createCheckpoint(env.admin, NS, 'ck-spec', { podName: 'victim' });
    for (const verb of ['update', 'patch']) {
      expect(await can(env.agent, { verb, group: 'cryopod.io', resource: 'checkpoints' })).toBe(false);
      expect(await can(env.agent, { verb, group: 'cryopod.io', resource: 'restores' })).toBe(false);
    }
    // For real: a merge patch of the spec, of a label and of the finalizers is refused with 403.
    const main = crPath('checkpoints', NS, 'ck-spec');
    expect(await code(env.agent.patch(main, { spec: { podName: 'other' } }))).toBe(403);
    expect(await code(env.agent.patch(main, { metadata: { labels: { 'cryopod.io/node': 'node-x' } } }))).toBe(403);
    expect(await code(env.agent.patch(main, { metadata: { finalizers: [] } }))).toBe(403);
    expect(await code(env.agent.request('PUT', main, { body: { ...ck, spec: { ...ck.spec, podName: 'other' } } }))).toBe(403);
    const after = await env.admin.get<typeof ck>(main);
    expect(after.spec.podName).toBe('victim');
  });
});
