import { buildRestorePod, STUB_PATH } from './restore-pod';

const saved = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'ns', uid: 'old', labels: { app: 'web' }, resourceVersion: '9' },
  spec: {
    nodeName: 'node-a',
    nodeSelector: { disk: 'ssd' },
    initContainers: [{ name: 'migrate', image: 'm' }],
    containers: [
      { name: 'app', image: 'nginx', command: ['nginx'], args: ['-g', 'daemon off;'], livenessProbe: { httpGet: { port: 80 } }, startupProbe: { httpGet: { port: 80 } }, readinessProbe: { httpGet: { port: 80, path: '/ready' } }, volumeMounts: [{ name: 'data', mountPath: '/data' }] },
      { name: 'side', image: 'busybox', lifecycle: { postStart: { exec: { command: ['x'] } } } },
    ],
    volumes: [{ name: 'data', emptyDir: {} }],
  },
  status: { phase: 'Running' },
};

describe('buildRestorePod', () => {
  const pod = buildRestorePod({
    saved,
    namespace: 'ns',
    podName: 'web-restored',
    nodeName: 'node-b',
    restore: { name: 'r1', uid: 'u1' },
    checkpointName: 'c1',
    stubImage: 'cryopod:1',
    stubSourcePath: '/opt/cryopod/cryopod-stub',
  });

  test('pinned to the target node, its scheduling constraints kept, new name, owned by the Restore, no leftovers of the old pod', () => {
    expect(pod.spec.nodeName).toBe('node-b');
    // Kept: the kubelet admits the pod against them too (placement.ts checked them before the pod was made).
    expect(pod.spec.nodeSelector).toEqual({ disk: 'ssd' });
    expect(pod.spec.hostname).toBe('web');
    expect(pod.spec.restartPolicy).toBe('Never');
    expect(pod.metadata).toEqual({
      name: 'web-restored',
      namespace: 'ns',
      labels: { app: 'web', 'cryopod.io/restore': 'r1', 'cryopod.io/node': 'node-b' },
      annotations: { 'cryopod.io/checkpoint': 'c1', 'cryopod.io/original-pod': 'web' },
      ownerReferences: [{ apiVersion: 'cryopod.io/v1alpha1', kind: 'Restore', name: 'r1', uid: 'u1', controller: true, blockOwnerDeletion: true }],
    });
    expect(pod.status).toBeUndefined();
  });

  test('every app container runs the stub, copied in by the one init container', () => {
    expect(pod.spec.initContainers).toHaveLength(1);
    expect(pod.spec.initContainers[0]).toMatchObject({ image: 'cryopod:1', command: ['cp', '/opt/cryopod/cryopod-stub', STUB_PATH] });
    for (const c of pod.spec.containers) {
      expect(c.command).toEqual([STUB_PATH]);
      expect(c.args).toEqual([]);
      expect(c.livenessProbe).toBeUndefined();
      expect(c.startupProbe).toBeUndefined();
      expect(c.lifecycle).toBeUndefined();
      expect(c.volumeMounts).toContainEqual({ name: 'cryopod-stub', mountPath: '/cryopod', readOnly: true });
    }
    expect(pod.spec.containers[0].volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
    expect(pod.spec.containers[0].image).toBe('nginx');
    // Kept: it only gates the Services until the morphed program answers it (the e2e test waits on it).
    expect(pod.spec.containers[0].readinessProbe).toEqual({ httpGet: { port: 80, path: '/ready' } });
    expect(pod.spec.volumes).toEqual([{ name: 'data', emptyDir: {} }, { name: 'cryopod-stub', emptyDir: {} }]);
  });

  test('does not modify its input, and refuses a file that is not a Pod', () => {
    expect(saved.spec.containers[0].command).toEqual(['nginx']);
    expect(() => buildRestorePod({ saved: { spec: {} }, namespace: 'n', podName: 'p', nodeName: 'x', restore: { name: 'r', uid: 'u' }, checkpointName: 'c', stubImage: 'i', stubSourcePath: '/s' })).toThrow(/no spec.containers/);
  });
});
