/**
 * What the real API server refuses, by the CRDs' schemas and CEL rules, and what it fills in (defaults).
 * Each assertion is on the server's own answer (status code and message), as a user would see it.
 */
import { ApiError } from '../kube/client';
import { crPath } from '../kube/paths';
import { createCheckpoint, setup, type Env } from './test-fixture';

let env: Env;
beforeAll(async () => {
  env = await setup();
});
afterAll(() => env?.stop());

async function refusal(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiError) return { code: err.code, message: (err.body as { message: string }).message };
    throw err;
  }
  throw new Error('the API server accepted it');
}

const restore = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'cryopod.io/v1alpha1', kind: 'Restore', metadata: { name, namespace: 'default' }, spec });

describe('the API server enforces the Checkpoint and Restore schemas', () => {
  test('a Checkpoint without podName is refused', async () => {
    const r = await refusal(env.admin.create(crPath('checkpoints', 'default'), { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name: 'no-pod' }, spec: { leaveRunning: true } }));
    expect(r.code).toBe(422);
    expect(r.message).toMatch(/spec\.podName: Required value/);
  });

  test('defaults are applied: leaveRunning true, storageLocation "default", timeoutSeconds 300', async () => {
    const ck = await createCheckpoint(env.admin, 'default', 'defaults', { podName: 'web' });
    expect(ck.spec).toEqual({ podName: 'web', leaveRunning: true, storageLocation: 'default', timeoutSeconds: 300, retainImages: false });
  });

  test('spec is immutable (CEL self == oldSelf), but metadata and status can change', async () => {
    const ck = await createCheckpoint(env.admin, 'default', 'immutable', { podName: 'web' });
    const r = await refusal(env.admin.patch(crPath('checkpoints', 'default', 'immutable'), { spec: { podName: 'other' } }));
    expect(r.code).toBe(422);
    expect(r.message).toMatch(/spec: Invalid value: "object": spec is immutable; create a new Checkpoint instead/);
    await env.admin.patch(crPath('checkpoints', 'default', 'immutable'), { metadata: { labels: { a: 'b' } } });
    const after = await env.admin.get<typeof ck>(crPath('checkpoints', 'default', 'immutable'));
    expect(after.spec.podName).toBe('web');
    expect(after.metadata.labels).toEqual({ a: 'b' });

    await env.admin.create(crPath('restores', 'default'), restore('immutable-r', { checkpointName: 'immutable' }));
    const rr = await refusal(env.admin.patch(crPath('restores', 'default', 'immutable-r'), { spec: { targetNode: 'elsewhere' } }));
    expect(rr.code).toBe(422);
    expect(rr.message).toMatch(/spec is immutable; create a new Restore instead/);
  });

  test.each([
    ['a namespace/name reference', 'other-namespace/ckpt'],
    ['an upper-case name', 'Ckpt'],
    ['a path', '../ckpt'],
  ])('a Restore naming %s is refused', async (_what, checkpointName) => {
    const r = await refusal(env.admin.create(crPath('restores', 'default'), restore('bad', { checkpointName })));
    expect(r.code).toBe(422);
    expect(r.message).toMatch(/spec\.checkpointName: Invalid value/);
    if (checkpointName.includes('/')) expect(r.message).toMatch(/a namespace\/name reference is not allowed/);
  });

  test('a Restore has no namespace field: strict field validation refuses one', async () => {
    const r = await refusal(
      env.admin.request('POST', `${crPath('restores', 'default')}?fieldValidation=Strict`, { body: restore('ns-field', { checkpointName: 'c', checkpointNamespace: 'other' }) }),
    );
    expect(r.code).toBe(400); // BadRequest: strict decoding, before validation
    expect(r.message).toMatch(/unknown field "spec.checkpointNamespace"/);
  });

  test('out-of-range values are refused', async () => {
    const r = await refusal(createCheckpoint(env.admin, 'default', 'bad-timeout', { podName: 'web', timeoutSeconds: 0 }));
    expect(r.code).toBe(422);
    expect(r.message).toMatch(/spec\.timeoutSeconds: Invalid value: 0: spec\.timeoutSeconds in body should be greater than or equal to 1/);
    const p = await refusal(env.admin.patch(crPath('checkpoints', 'default', 'defaults', 'status'), { status: { phase: 'Done' } }));
    expect(p.code).toBe(422);
    expect(p.message).toMatch(/status\.phase: Unsupported value: "Done"/);
  });

  test('kubectl shows the printer columns; READY and REASON are the Ready condition\'s', async () => {
    const out = await env.kubectl(['get', 'checkpoints', '-n', 'default']);
    expect(out.split('\n')[0].split(/\s+/).filter(Boolean)).toEqual(['NAME', 'POD', 'PHASE', 'READY', 'REASON', 'NODE', 'SIZE', 'AGE']);
    const rout = await env.kubectl(['get', 'restores', '-n', 'default']);
    expect(rout.split('\n')[0].split(/\s+/).filter(Boolean)).toEqual(['NAME', 'CHECKPOINT', 'PHASE', 'READY', 'REASON', 'NODE', 'POD', 'AGE']);

    await createCheckpoint(env.admin, 'default', 'columns', { podName: 'web' });
    const now = new Date().toISOString();
    await env.admin.patch(crPath('checkpoints', 'default', 'columns', 'status'), {
      status: {
        phase: 'Failed',
        conditions: [
          { type: 'Dispatched', status: 'True', reason: 'Dispatched', message: 'to node-a', lastTransitionTime: now },
          { type: 'Ready', status: 'False', reason: 'Timeout', message: 'late', lastTransitionTime: now },
        ],
      },
    });
    const row = (await env.kubectl(['get', 'checkpoint', 'columns', '-n', 'default', '--no-headers'])).trim().split(/\s+/);
    expect(row.slice(0, 5)).toEqual(['columns', 'web', 'Failed', 'False', 'Timeout']);
  });

  test('the examples are valid objects', async () => {
    await env.kubectl(['apply', '--dry-run=server', '-f', `${__dirname}/../../examples/checkpoint.yaml`, '-f', `${__dirname}/../../examples/restore.yaml`]);
  });
});

describe('hostile names and paths never reach a directory or a pod lookup: the API server refuses them', () => {
  test.each([
    ['podName', { podName: '../../etc' }, /spec\.podName: Invalid value: "\.\.\/\.\.\/etc"/],
    ['podName', { podName: 'web/../../x' }, /spec\.podName: Invalid value/],
    ['a container', { podName: 'web', containers: ['../app'] }, /spec\.containers\[0\]: Invalid value: "\.\.\/app"/],
    ['a container', { podName: 'web', containers: ['a/b'] }, /spec\.containers\[0\]: Invalid value: "a\/b"/],
    ['storageLocation', { podName: 'web', storageLocation: '../../root' }, /spec\.storageLocation: Invalid value: "\.\.\/\.\.\/root"/],
  ])('%s %j', async (_what, spec, message) => {
    const r = await refusal(createCheckpoint(env.admin, 'default', 'hostile', spec as { podName: string }));
    expect(r.code).toBe(422);
    expect(r.message).toMatch(message);
  });

  test.each(['..', 'a/b', '.hidden', 'x'.repeat(254)])('a Checkpoint named %j is refused', async (name) => {
    const r = await refusal(env.admin.create(crPath('checkpoints', 'default'), { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name }, spec: { podName: 'web' } }));
    expect([400, 404, 422]).toContain(r.code);
  });
});
