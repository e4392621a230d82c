import { nodeFacts, placementConflict } from './placement';

const node = (labels: Record<string, string>, spec: Record<string, unknown> = {}) =>
  nodeFacts({ metadata: { name: 'node-b', labels: { 'kubernetes.io/hostname': 'node-b', ...labels } }, spec });

describe('placementConflict: what the scheduler would have checked for a node a Restore names', () => {
  test('no constraints and no taints: allowed', () => {
    expect(placementConflict({ containers: [] }, node({}))).toBeUndefined();
  });

  test('nodeSelector: every label must match', () => {
    const spec = { nodeSelector: { disk: 'ssd', zone: 'a' } };
    expect(placementConflict(spec, node({ disk: 'ssd', zone: 'a' }))).toBeUndefined();
    expect(placementConflict(spec, node({ disk: 'ssd', zone: 'b' }))).toMatch(/nodeSelector zone=a does not match node node-b \(zone=b\)/);
    expect(placementConflict(spec, node({ disk: 'ssd' }))).toMatch(/zone=<unset>/);
  });

  test('required node affinity: terms are ORed, expressions in a term ANDed', () => {
    const spec = {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'gpu', operator: 'Exists' }, { key: 'tier', operator: 'NotIn', values: ['batch'] }] },
              { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-z'] }] },
            ],
          },
        },
      },
    };
    expect(placementConflict(spec, node({ gpu: 'a100' }))).toBeUndefined();
    expect(placementConflict(spec, node({ gpu: 'a100', tier: 'batch' }))).toMatch(/none of the pod's 2 required node affinity term/);
    expect(placementConflict(spec, node({}))).toMatch(/required node affinity/);
    const byName = { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-b'] }] }] } } } };
    expect(placementConflict(byName, node({}))).toBeUndefined();
  });

  test('Gt/Lt compare integers; DoesNotExist; unknown operators never hold', () => {
    const term = (e: object) => ({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [e] }] } } } });
    expect(placementConflict(term({ key: 'cores', operator: 'Gt', values: ['8'] }), node({ cores: '16' }))).toBeUndefined();
    expect(placementConflict(term({ key: 'cores', operator: 'Gt', values: ['8'] }), node({ cores: '4' }))).toBeDefined();
    expect(placementConflict(term({ key: 'cores', operator: 'Lt', values: ['8'] }), node({ cores: 'many' }))).toBeDefined();
    expect(placementConflict(term({ key: 'spot', operator: 'DoesNotExist' }), node({}))).toBeUndefined();
    expect(placementConflict(term({ key: 'spot', operator: 'DoesNotExist' }), node({ spot: 'true' }))).toBeDefined();
    expect(placementConflict(term({ key: 'spot', operator: 'Sometimes' }), node({ spot: 'true' }))).toBeDefined();
  });

  test('NoSchedule and NoExecute taints must be tolerated; PreferNoSchedule need not be', () => {
    const tainted = node({}, { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }, { key: 'soft', effect: 'PreferNoSchedule' }] });
    expect(placementConflict({}, tainted)).toMatch(/taint dedicated=db:NoSchedule, which the pod does not tolerate/);
    expect(placementConflict({ tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }] }, tainted)).toBeUndefined();
    expect(placementConflict({ tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'web' }] }, tainted)).toBeDefined();
    expect(placementConflict({ tolerations: [{ operator: 'Exists' }] }, tainted)).toBeUndefined();
    const noExecute = node({}, { taints: [{ key: 'evict', effect: 'NoExecute' }] });
    expect(placementConflict({ tolerations: [{ key: 'evict', operator: 'Exists', effect: 'NoSchedule' }] }, noExecute)).toMatch(/evict:NoExecute/);
  });

  test('a cordoned node is refused unless the pod tolerates node.kubernetes.io/unschedulable', () => {
    const cordoned = node({}, { unschedulable: true });
    expect(placementConflict({}, cordoned)).toMatch(/node.kubernetes.io\/unschedulable:NoSchedule/);
    expect(placementConflict({ tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists' }] }, cordoned)).toBeUndefined();
  });
});
