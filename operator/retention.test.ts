import type { Checkpoint } from '../crds/types';
import { beyondKeepLast, ttlRemainingMs } from './retention';

const ck = (name: string, pod: string, phase: string, finishedAt?: string): Checkpoint =>
  ({ apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name, creationTimestamp: '2025-01-01T00:00:00Z' }, spec: { podName: pod }, status: { phase, finishedAt } }) as Checkpoint;

describe('retention', () => {
  const all = [
    ck('a', 'web', 'Succeeded', '2025-01-01T00:01:00Z'),
    ck('b', 'web', 'Succeeded', '2025-01-01T00:03:00Z'),
    ck('c', 'web', 'Succeeded', '2025-01-01T00:02:00Z'),
    ck('d', 'web', 'Failed', '2025-01-01T00:00:30Z'),
    ck('e', 'db', 'Succeeded', '2025-01-01T00:00:10Z'),
  ];
  test('keep-last 2 drops the oldest Succeeded checkpoint of the same pod only', () => {
    expect(beyondKeepLast(all, 'web', 2).map((c) => c.metadata.name)).toEqual(['a']);
    expect(beyondKeepLast(all, 'web', 1).map((c) => c.metadata.name)).toEqual(['c', 'a']);
    expect(beyondKeepLast(all, 'web', 0)).toEqual([]);
    expect(beyondKeepLast(all, 'db', 1)).toEqual([]);
  });
  test('ttl', () => {
    const now = new Date('2025-01-01T00:02:00Z');
    expect(ttlRemainingMs(all[0], 60, now)).toBe(0);
    expect(ttlRemainingMs(all[1], 60, now)).toBe(120000);
    expect(ttlRemainingMs(all[1], 0, now)).toBeUndefined();
  });
});
