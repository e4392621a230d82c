import { jsonEqual, setCondition } from './conditions';

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
  test('jsonEqual ignores key order and undefined fields', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined })).toBe(true);
    expect(jsonEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: '1' })).toBe(false);
  });
});
