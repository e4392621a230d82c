/**
 * metav1.Condition and status helpers, pure, for both writers of a status (the operator and the agent).
 * setCondition has apimachinery's meta.SetStatusCondition semantics: a condition keeps its place in the
 * list (a new type is appended), and lastTransitionTime changes only when its status flips, so re-running a
 * reconcile produces the same status and no write (statusEqual says whether anything changed).
 */
import type { Condition } from '../crds/types';

export function setCondition(conditions: Condition[] | undefined, c: Omit<Condition, 'lastTransitionTime'>, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((x) => x.type === c.type);
  const old = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    ...c,
    lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now.toISOString(),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function getCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Deep equality of JSON values, for "did the status change?" (key order and undefined fields ignored). */
export function statusEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => statusEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
