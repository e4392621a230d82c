/**
 * The dump guard's process (guard.ts): `node guard-main.js PID SINCE_TICKS RESUME(0|1)`, stdin a pipe from
 * the dumper. On EOF without "done": rescue the task and say so on stderr.
 */
import { rescueTask } from '../native/lib';

const [pidArg, sinceArg, resumeArg] = process.argv.slice(2);
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
    const r = await rescueTask({ pid, childrenSince: Number(sinceArg), resumeStopped: resumeArg === '1' });
    if (!r.gone && (r.infected || r.childrenReaped > 0 || r.resumed))
      process.stderr.write(
        `cryopod: the dumper of pid ${pid} died before it finished; pid ${pid} was put back` +
          ` (parasite removed: ${r.infected}, registers restored: ${r.registersRestored}, fds closed: ${r.fdsClosed},` +
          ` snapshot children reaped: ${r.childrenReaped}, resumed from its stop: ${r.resumed})\n`,
      );
    process.exit(0);
  } catch (err) {
    process.stderr.write(`cryopod: the dumper of pid ${pid} died; putting pid ${pid} back failed: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
