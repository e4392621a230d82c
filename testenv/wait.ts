/**
 * The two waits tests may use instead of a fixed sleep (STYLE 19):
 *   waitFor   polls until something observable holds, with a deadline (fails with the last value seen);
 *   holdsFor  shows that something did NOT happen: polls a check for the whole window and fails the moment
 *             it breaks. The caller names the window and says in a comment why it is long enough.
 */

/** Polls until fn returns a value other than undefined/false, or fails with the last value seen. */
export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20000, everyMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Checks fn every everyMs for windowMs; throws as soon as it returns false (or throws). */
export async function holdsFor(what: string, fn: () => boolean | Promise<boolean>, windowMs: number, everyMs = 20): Promise<void> {
  const end = Date.now() + windowMs;
  for (;;) {
    if (!(await fn())) throw new Error(`${what} stopped holding ${windowMs - (end - Date.now())} ms into a ${windowMs} ms window`);
    if (Date.now() >= end) return;
    await new Promise((r) => setTimeout(r, Math.min(everyMs, Math.max(1, end - Date.now()))));
  }
}
