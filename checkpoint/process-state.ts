/** Small /proc helpers a dump needs: is a process gone, what state is it in. */
import * as fs from 'fs';

/** The State letter of /proc/PID/status (R, S, D, T, t, Z, X), or undefined when the process is gone. */
export function processState(pid: number): string | undefined {
  try {
    const m = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? m[1] : undefined;
  } catch {
    return undefined;
  }
}

/** Waits until the process has exited (gone, or a zombie its parent has not reaped yet). */
export async function waitForExit(pid: number, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = processState(pid);
    if (s === undefined || s === 'Z' || s === 'X') return;
    if (Date.now() > deadline) throw new Error(`pid ${pid} did not exit within ${timeoutMs} ms`);
    // Short: the dump that waits here is timed as a whole (a dying task's teardown takes ~0.1 s per GiB).
    await new Promise((r) => setTimeout(r, 2));
  }
}
