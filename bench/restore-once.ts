/** One restore in a fresh process: `node dist/bench/restore-once.js <dir>`; prints JSON {pid, seconds}. */
import { restoreProcess } from '../checkpoint';

restoreProcess({ dir: process.argv[2] }).then(
  (r) => process.stdout.write(JSON.stringify(r) + '\n'),
  (err) => {
    process.stderr.write(`restore-once: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
