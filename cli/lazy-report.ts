/**
 * `cryopod restore --lazy`: the command is the page server of the task it restored, so it stays in the
 * foreground until the task is fully resident. It prints the pid (stdout) and "running after" (stderr)
 * as soon as the task runs, then "fully resident after" once every page is in; a chunk that fails its
 * check (or an image cut short) kills the task and fails the command naming the chunk. SIGINT, SIGTERM
 * and SIGHUP while serving kill the task too: without its server it would fault in zero pages where its
 * data should be.
 */
import type { RestoreSummary } from '../checkpoint';

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function ms(seconds: number): string {
  return `${(seconds * 1000).toFixed(1)} ms`;
}

/** Prints that the task runs, serves it until resident; resolves when it is (rejects as the pager did). */
export async function reportLazy(r: RestoreSummary, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<void> {
  out.write(`${r.pid}\n`);
  if (r.lazy === undefined) throw new Error('internal: a lazy restore without its pager');
  if (r.lazy.eagerReason !== undefined) {
    err.write(`restored eagerly in ${ms(r.seconds)} (verify ${ms(r.verifySeconds)}, morph ${ms(r.morphSeconds)}): ${r.lazy.eagerReason}\n`);
    return;
  }
  err.write(`running after ${ms(r.seconds)} (verify ${ms(r.verifySeconds)}, morph ${ms(r.morphSeconds)}); serving its pages\n`);
  const lazy = r.lazy;
  const onSignal = (sig: NodeJS.Signals): void => lazy.abort(`cryopod restore got ${sig}`);
  for (const s of SIGNALS) process.on(s, onSignal);
  try {
    const res = await lazy.resident;
    if (res.state === 'exited') {
      err.write(`pid ${r.pid} exited after ${ms(res.seconds)}, before it was fully resident\n`);
      return;
    }
    err.write(
      `fully resident after ${ms(res.seconds)}: ${res.chunks} chunks (${res.faultChunks} on fault, ${res.prefetchedChunks} prefetched, ` +
        `${res.eagerChunks} before it ran), ${res.faults} faults\n`,
    );
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
  }
}
