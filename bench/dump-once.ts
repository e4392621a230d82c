/**
 * One dump in a fresh process, so its peak RSS is the dumper's alone:
 *   node dist/bench/dump-once.js <pid> <method> <pagesPath> [short]   (short: leave-running short freeze)
 * Prints JSON: frozen and page-moving seconds, page bytes, RSS before and peak (VmHWM).
 */
import * as fs from 'fs';
import { measurePageDump, DumpMethod } from '../checkpoint';

function statusKiB(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function main(): Promise<void> {
  const [pid, method, pagesPath, short] = process.argv.slice(2);
  const rssBefore = statusKiB('VmRSS');
  const t0 = process.hrtime.bigint();
  const m = await measurePageDump({ pid: Number(pid), pagesPath, method: method as DumpMethod, snapshot: short === 'short' });
  const totalSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(
    JSON.stringify({
      frozenSeconds: m.frozenSeconds,
      pagesSeconds: m.pagesSeconds,
      totalSeconds,
      bytes: m.bytes,
      snapshotPrivateBytes: m.snapshotPrivateBytes,
      rssBeforeKiB: rssBefore,
      peakKiB: statusKiB('VmHWM'),
    }) + '\n',
  );
}

main().catch((err) => {
  process.stderr.write(`dump-once: ${(err as Error).message}\n`);
  process.exit(1);
});
