import { getCondition, setCondition, statusEqual } from './conditions';

describe('setCondition', () => {
  const t0 = new Date('2025-01-01T00:00:00Z');
  const t1 = new Date('2025-01-01T00:01:00Z');
  test('adds, then keeps lastTransitionTime while the status stays', () => {
    const a = setCondition(undefined, { type: 'Dispatched', status: 'False', reason: 'PodNotScheduled', message: 'x' }, t0);
    const b = setCondition(a, { type: 'Dispatched', status: 'False', reason: 'PodNotScheduled', message: 'y' }, t1);
    expect(b).toHaveLength(1);
    expect(b[0].lastTransitionTime).toBe(t0.toISOString());
    expect(b[0].message).toBe('y');
    const c = setCondition(b, { type: 'Dispatched', status: 'True', reason: 'Dispatched', message: 'z' }, t1);
    expect(c[0].lastTransitionTime).toBe(t1.toISOString());
    expect(a).toHaveLength(1); // inputs are not mutated
    expect(a[0].status).toBe('False');
  });

  test('a condition keeps its place in the list (meta.SetStatusCondition); a new type is appended', () => {
    let list = setCondition(undefined, { type: 'Ready', status: 'Unknown', reason: 'Pending', message: '' }, t0);
    list = setCondition(list, { type: 'Dispatched', status: 'True', reason: 'Dispatched', message: 'to node-a' }, t0);
    list = setCondition(list, { type: 'Ready', status: 'True', reason: 'Succeeded', message: 'done' }, t1);
    expect(list.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'True', 'Succeeded'],
      ['Dispatched', 'True', 'Dispatched'],
    ]);
    expect(list[0].lastTransitionTime).toBe(t1.toISOString());
    expect(list[1].lastTransitionTime).toBe(t0.toISOString());
  });

  test('the same condition set twice is the same status (no write)', () => {
    const c = { type: 'Ready', status: 'False' as const, reason: 'Timeout', message: 'late', observedGeneration: 2 };
    const once = setCondition([], c, t0);
    expect(statusEqual({ conditions: setCondition(once, c, t1) }, { conditions: once })).toBe(true);
  });

  test('getCondition finds by type', () => {
    const list = setCondition(setCondition(undefined, { type: 'A', status: 'True', reason: 'R', message: '' }, t0), { type: 'B', status: 'False', reason: 'S', message: '' }, t0);
    expect(getCondition(list, 'B')?.reason).toBe('S');
    expect(getCondition(list, 'C')).toBeUndefined();
    expect(getCondition(undefined, 'A')).toBeUndefined();
  });

  test('statusEqual ignores key order and undefined fields', () => {
    expect(statusEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined })).toBe(true);
    expect(statusEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(statusEqual({ a: 1 }, { a: '1' })).toBe(false);
  });
});
