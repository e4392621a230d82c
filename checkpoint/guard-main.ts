/**
 * The dump guard's process (guard.ts): `node guard-main.js PID SINCE_TICKS STOPPED_BEFORE` (comma-separated
 * PIDs of the tree that were stopped before the dump), stdin a pipe from the dumper. On EOF without
 * "done": rescue the task and its tree, and say so on stderr.
 */
import { rescueTree } from './rescue';

const [pidArg, sinceArg, stoppedArg] = process.argv.slice(2);
const pid = Number(pidArg);
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => (input += chunk));
process.stdin.on('end', () => void finish());
process.stdin.on('error', () => void finish());

let finished = false;
async function finish(): Promise<void> {
  if (finished) return;
  finished = true;
  if (input.includes('done')) process.exit(0);
  try {
    const stoppedBefore = (stoppedArg ?? '').split(',').filter(Boolean).map(Number);
    for (const { pid: p, report: r } of await rescueTree({ pid, childrenSince: Number(sinceArg), stoppedBefore })) {
      if (!r.gone && (r.infected || r.childrenReaped > 0 || r.resumed))
        process.stderr.write(
          `cryopod: the dumper of pid ${pid} died before it finished; pid ${p} was put back` +
            ` (parasite removed: ${r.infected}, registers restored: ${r.registersRestored}, threads restored: ${r.threadsRestored},` +
            ` fds closed: ${r.fdsClosed}, snapshot children reaped: ${r.childrenReaped}, resumed from its stop: ${r.resumed})\n`,
        );
    }
    process.exit(0);
  } catch (err) {
    process.stderr.write(`cryopod: the dumper of pid ${pid} died; putting pid ${pid} back failed: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
