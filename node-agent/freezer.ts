/**
 * Freezing a cgroup, both kinds:
 *
 *   v1  <dir>/freezer.state   write FROZEN / THAWED; reads FREEZING until every task stopped
 *   v2  <dir>/cgroup.freeze   write 1 / 0; <dir>/cgroup.events says "frozen 1" once every task stopped
 *
 * freeze() waits until the kernel reports the cgroup frozen and thaws it again when that does not happen in
 * time; thaw() waits until it reads thawed. withFrozen() is the guard: whatever the body does, the cgroup
 * is thawed before it returns or throws.
 */
import * as fs from 'fs';
import * as path from 'path';

export interface FreezerRef {
  kind: 'v1' | 'v2';
  /** The cgroup directory. */
  path: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function controlFile(ref: FreezerRef): string {
  return path.join(ref.path, ref.kind === 'v1' ? 'freezer.state' : 'cgroup.freeze');
}

/** The effective state: 'frozen', 'freezing' (v1 only) or 'thawed'. */
export function freezerState(ref: FreezerRef): 'frozen' | 'freezing' | 'thawed' {
  if (ref.kind === 'v1') {
    const s = fs.readFileSync(controlFile(ref), 'utf8').trim();
    return s === 'FROZEN' ? 'frozen' : s === 'FREEZING' ? 'freezing' : 'thawed';
  }
  const events = fs.readFileSync(path.join(ref.path, 'cgroup.events'), 'utf8');
  if (/^frozen 1$/m.test(events)) return 'frozen';
  return fs.readFileSync(controlFile(ref), 'utf8').trim() === '1' ? 'freezing' : 'thawed';
}

/** True when the cgroup is frozen or asked to freeze (what a crashed agent may have left behind). */
export function isFrozenOrFreezing(ref: FreezerRef): boolean {
  return freezerState(ref) !== 'thawed';
}

export async function freeze(ref: FreezerRef, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  fs.writeFileSync(controlFile(ref), ref.kind === 'v1' ? 'FROZEN' : '1');
  for (;;) {
    if (freezerState(ref) === 'frozen') return;
    if (Date.now() > deadline) {
      await thaw(ref);
      throw Object.assign(new Error(`cgroup ${ref.path} did not freeze within ${timeoutMs} ms (thawed again)`), { code: 'ETIMEDOUT' });
    }
    // v1 can stay FREEZING when a task was busy; writing FROZEN again retries the stragglers.
    if (ref.kind === 'v1') fs.writeFileSync(controlFile(ref), 'FROZEN');
    await sleep(2);
  }
}

export async function thaw(ref: FreezerRef, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    fs.writeFileSync(controlFile(ref), ref.kind === 'v1' ? 'THAWED' : '0');
    if (freezerState(ref) === 'thawed') return;
    if (Date.now() > deadline) throw Object.assign(new Error(`cgroup ${ref.path} did not thaw within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
    await sleep(2);
  }
}

/**
 * Runs body with the cgroup frozen, and thaws it on every path out. The time frozen is returned with the
 * body's result. onFrozen/onThawed let the caller journal the freeze (freeze-journal.ts).
 */
export async function withFrozen<T>(
  ref: FreezerRef,
  body: () => Promise<T>,
  hooks: { beforeFreeze?: () => void; afterThaw?: () => void } = {},
): Promise<{ result: T; frozenSeconds: number }> {
  hooks.beforeFreeze?.();
  const t0 = process.hrtime.bigint();
  try {
    await freeze(ref);
    const result = await body();
    return { result, frozenSeconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  } finally {
    await thaw(ref);
    hooks.afterThaw?.();
  }
}
