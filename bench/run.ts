/**
 * `npm run bench`: dump and restore throughput of the native core, next to references measured in the
 * same run on the same machine, as ratios.
 *
 *   whole       first, for each size: whole `cryopod dump` / `cryopod restore` commands against CRIU's
 *               (`$CRIU`, a CRIU built from source) on one ticker victim, medians of 3, as ratios
 *               (whole-command.ts). `--only whole` runs just this; without $CRIU, cryopod alone.
 *
 *   Every rate is the best of REPEAT runs (the machine is shared; the best run is the least disturbed).
 *
 *   for each victim size (default 256 MiB, 1 GiB, 4 GiB; `--sizes 256,1024`):
 *     references  memcpy of that size; `dd` of that size into each sink
 *     dump        parasite (vmsplice → pipes → splice) and process_vm_readv, into /dev/null, /dev/shm and
 *                 disk: page bytes / seconds spent moving pages (the task is frozen for this), the whole
 *                 frozen time, and the dumper's peak RSS growth (each dump runs in a fresh process)
 *     restore     a whole `cryopod restore` (restoreProcess, fresh process) from /dev/shm and from disk (page
 *                 cache dropped first), best of REPEAT: total, verify (manifest, metadata images, sizes) and
 *                 morph (the native fill hashes the pages images as it writes them); 1 GiB from /dev/shm
 *                 is flagged against the < 1 s target
 *     downtime    frozen time and total time of a leave-running dump to /dev/shm, full freeze against
 *                 short freeze (copy-on-write snapshot), and the snapshot's extra memory for an idle
 *                 victim and for one that rewrites all its memory during the drain (gen-writer)
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { dumpProcess } from '../checkpoint';
import { formatScaling, formatWhole, wholeCommands, type Ticker, type WholeResult } from './whole-command';

const root = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const bin = (name: string): string => path.join(root, 'bench', 'bin', name);
const GEN_WRITER = path.join(root, 'native', 'test', 'snapshot', 'bin', 'gen-writer');
const MiB = 1 << 20;
const REPEAT = 3;

/** The run with the highest page rate of REPEAT runs. */
function bestOf(run: () => DumpResult): DumpResult {
  let best: DumpResult | undefined;
  for (let i = 0; i < REPEAT; i++) {
    const r = run();
    if (!best || r.bytes / r.pagesSeconds > best.bytes / best.pagesSeconds) best = r;
  }
  return best as DumpResult;
}

interface DumpResult {
  frozenSeconds: number;
  pagesSeconds: number;
  totalSeconds: number;
  snapshotPrivateBytes?: number;
  bytes: number;
  rssBeforeKiB: number;
  peakKiB: number;
}

function parseSizes(): number[] {
  const i = process.argv.indexOf('--sizes');
  const spec = i > 0 ? process.argv[i + 1] : '256,1024,4096';
  return spec.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`bad size ${s} (MiB)`);
    return n;
  });
}

function ms(seconds: number): string {
  return `${(seconds * 1000).toFixed(1)} ms`;
}

function mibOf(bytes: number | undefined): string {
  return `${((bytes ?? 0) / MiB).toFixed(1)} MiB`;
}

/** gen-writer rewrites all its memory continuously: the worst case for a copy-on-write snapshot. */
async function startWriter(mib: number, dir: string): Promise<number> {
  const wdir = fs.mkdtempSync(path.join(dir, 'writer-'));
  execFileSync('/bin/sh', ['-c', `setsid "$0" "$@" </dev/null >/dev/null 2>&1 &`, GEN_WRITER, wdir, String(mib), '1']);
  const ready = path.join(wdir, 'ready');
  const deadline = Date.now() + 120_000;
  while (!fs.existsSync(ready)) {
    if (Date.now() > deadline) throw new Error('gen-writer did not get ready');
    await new Promise((r) => setTimeout(r, 50));
  }
  return Number(fs.readFileSync(ready, 'utf8').trim());
}

function rate(bytes: number, seconds: number): string {
  return `${(bytes / MiB / seconds).toFixed(0).padStart(6)} MiB/s`;
}

async function startVictim(mib: number, dir: string, tickLog?: string): Promise<number> {
  const ready = path.join(dir, `victim-${mib}.ready`);
  fs.rmSync(ready, { force: true });
  // Started through a shell that detaches it: a dumper must not be its parent (see docs/native.md).
  execFileSync('/bin/sh', ['-c', `setsid "$0" "$@" </dev/null >/dev/null 2>&1 &`, bin('victim'), String(mib), ready, ...(tickLog ? [tickLog] : [])]);
  const deadline = Date.now() + 120_000;
  while (!fs.existsSync(ready)) {
    if (Date.now() > deadline) throw new Error(`victim of ${mib} MiB did not get ready`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Number(fs.readFileSync(ready, 'utf8').trim());
}

function ddSeconds(mib: number, target: string): number {
  const t0 = process.hrtime.bigint();
  // No fsync: like the page time of a dump, this is the rate at which the sink takes the bytes (for disk,
  // the page cache); the dump's fsync shows in its frozen time.
  const r = spawnSync('dd', ['if=/dev/zero', `of=${target}`, 'bs=1M', `count=${mib}`]);
  if (r.status !== 0) throw new Error(`dd failed: ${r.stderr}`);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (target !== '/dev/null') fs.rmSync(target, { force: true });
  return s;
}

function dumpOnce(pid: number, method: string, pagesPath: string, short = false): DumpResult {
  const args = [path.join(__dirname, 'dump-once.js'), String(pid), method, pagesPath, ...(short ? ['short'] : [])];
  const out = execFileSync(process.execPath, args, { encoding: 'utf8' });
  if (pagesPath !== '/dev/null') fs.rmSync(pagesPath, { force: true });
  return JSON.parse(out) as DumpResult;
}

interface RestoreResult {
  pid: number;
  seconds: number;
  verifySeconds: number;
  morphSeconds: number;
}

/** One whole `cryopod restore` (restoreProcess) in a fresh process; the restored copy is killed. */
function restoreOnce(ckpt: string): RestoreResult {
  const r = JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'restore-once.js'), ckpt], { encoding: 'utf8' })) as RestoreResult;
  try {
    process.kill(r.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  return r;
}

function dropCaches(): void {
  try {
    execFileSync('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    // not root: the disk restore then reads from the page cache; the table says so
  }
}

async function main(): Promise<void> {
  const sizes = parseSizes();
  const work = {
    shm: fs.mkdtempSync('/dev/shm/cryopod-bench-'),
    disk: fs.mkdtempSync(path.join(fs.existsSync('/var/tmp') ? '/var/tmp' : os.tmpdir(), 'cryopod-bench-')),
  };
  // No /dev/null sink any more: the dump creates its pages image O_EXCL (a planted file or symlink is
  // never written through), so it cannot write into an existing device.
  const sinks: Array<[string, string]> = [
    ['/dev/shm', work.shm],
    ['disk', work.disk],
  ];
  console.log(`cryopod bench on ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}`);
  const onlyWhole = process.argv.includes('--only') && process.argv[process.argv.indexOf('--only') + 1] === 'whole';
  const criu = process.env.CRIU;
  console.log(criu ? `CRIU: ${criu} (${execFileSync(criu, ['--version'], { encoding: 'utf8' }).split('\n')[0]})` : 'CRIU: not set ($CRIU names a CRIU binary built from its source): cryopod alone');
  const whole: WholeResult[] = [];
  try {
    for (const mib of sizes) {
      console.log(`\nvictims of ${mib} MiB (tickers); load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at the start`);
      let n = 0;
      const startTicker = async (tool: string): Promise<Ticker> => {
        const log = path.join(work.shm, `ticks-${tool}-${mib}-${n++}.log`);
        return { pid: await startVictim(mib, work.shm, log), log };
      };
      const r = await wholeCommands({ root, criu, mib, startTicker, work: work.shm, rounds: REPEAT });
      whole.push(r);
      for (const line of formatWhole(r)) console.log(line);
      console.log(`  load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at the end`);
      if (onlyWhole) continue;
      const bytes = mib * MiB;
      const memcpyRate = Number(execFileSync(bin('memcpy'), [String(mib)], { encoding: 'utf8' }).trim());
      const pid = await startVictim(mib, work.shm);
      try {
        console.log(`\nvictim ${mib} MiB (pid ${pid}); memcpy ${rate(memcpyRate, 1).trim()}`);
        console.log('  dump to      dd reference   parasite (vs dd, vs memcpy)           frozen    process_vm_readv (vs dd)      frozen    peak RSS growth');
        for (const [name, dir] of sinks) {
          const target = name === '/dev/null' ? '/dev/null' : path.join(dir, 'pages-1.img');
          // dd and the parasite dump alternate, so both see the machine in the same state (the page
          // cache, tmpfs and other jobs drift over a run); each keeps its best.
          let dd = Infinity;
          const para = bestOf(() => {
            dd = Math.min(dd, ddSeconds(mib, name === '/dev/null' ? '/dev/null' : path.join(dir, 'dd.img')));
            return dumpOnce(pid, 'parasite', target);
          });
          const readv = bestOf(() => dumpOnce(pid, 'vm_readv', target));
          if (para.bytes < bytes || readv.bytes < bytes) throw new Error(`dumped ${para.bytes} / ${readv.bytes} bytes of ${bytes}`);
          const ddRate = bytes / dd;
          const pRate = para.bytes / para.pagesSeconds;
          const rRate = readv.bytes / readv.pagesSeconds;
          const growth = Math.max(para.peakKiB - para.rssBeforeKiB, readv.peakKiB - readv.rssBeforeKiB) / 1024;
          console.log(
            `  ${name.padEnd(10)} ${rate(bytes, dd)}   ${rate(para.bytes, para.pagesSeconds)} (${(pRate / ddRate).toFixed(2)}x, ${(pRate / memcpyRate).toFixed(2)}x)` +
              `   ${(para.frozenSeconds * 1000).toFixed(0).padStart(6)} ms   ${rate(readv.bytes, readv.pagesSeconds)} (${(rRate / ddRate).toFixed(2)}x)` +
              `   ${(readv.frozenSeconds * 1000).toFixed(0).padStart(6)} ms   ${growth.toFixed(1)} MiB` +
              // The open issue's target: the parasite dump to /dev/shm at >= 0.9x of the same run's dd.
              (name === '/dev/shm' ? `   [target >= 0.90x dd: ${pRate / ddRate >= 0.9 ? 'met' : 'NOT MET'}]` : ''),
          );
        }
        for (const [name, dir] of sinks) {
          const ckpt = fs.mkdtempSync(path.join(dir, 'ckpt-'));
          await dumpProcess({ pid, dir: ckpt, leaveRunning: true });
          let r: RestoreResult | undefined;
          for (let i = 0; i < REPEAT; i++) {
            if (name === 'disk') dropCaches();
            const one = restoreOnce(ckpt);
            if (!r || one.seconds < r.seconds) r = one;
          }
          fs.rmSync(ckpt, { recursive: true, force: true });
          const best = r as RestoreResult;
          // The open issue's target: a whole restore of 1 GiB from /dev/shm in under 1 s.
          const target = name === '/dev/shm' && mib === 1024 ? `   [target < 1 s: ${best.seconds < 1 ? 'met' : 'NOT MET'}]` : '';
          console.log(
            `  restore from ${name.padEnd(9)} ${rate(bytes, best.seconds)}: total ${ms(best.seconds)} for ${mib} MiB = ` +
              `verify ${ms(best.verifySeconds)} (metadata images, sizes) + morph ${ms(best.morphSeconds)} (pages hashed while filled, ${rate(bytes, best.morphSeconds).trim()})${target}`,
          );
        }
        const target = path.join(work.shm, 'pages-1.img');
        const full = dumpOnce(pid, 'parasite', target, false);
        const short = dumpOnce(pid, 'parasite', target, true);
        const writer = await startWriter(mib, work.shm);
        let busy: DumpResult;
        try {
          busy = dumpOnce(writer, 'parasite', target, true);
        } finally {
          process.kill(writer, 'SIGKILL');
        }
        console.log(
          `  downtime     full freeze: frozen ${ms(full.frozenSeconds)} of ${ms(full.totalSeconds)};` +
            `  short freeze: frozen ${ms(short.frozenSeconds)} of ${ms(short.totalSeconds)}` +
            ` (${(full.frozenSeconds / short.frozenSeconds).toFixed(1)}x less); extra memory ${mibOf(short.snapshotPrivateBytes)} idle,` +
            ` ${mibOf(busy.snapshotPrivateBytes)} (${(((busy.snapshotPrivateBytes ?? 0) / bytes) * 100).toFixed(0)}% of the victim) when it rewrites everything` +
            ` (frozen ${ms(busy.frozenSeconds)}, total ${ms(busy.totalSeconds)})`,
        );
      } finally {
        process.kill(pid, 'SIGKILL');
      }
    }
    for (const line of formatScaling(whole)) console.log(line);
  } finally {
    fs.rmSync(work.shm, { recursive: true, force: true });
    fs.rmSync(work.disk, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exit(1);
});
