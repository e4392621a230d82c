/**
 * `npm run demo`: checkpoint a running process, kill it, restore it, and show that it goes on where it was.
 *
 * The workload (demo/workload.c) holds 256 MiB of patterned memory and appends
 * `tick <n> checksum <hex> pid <pid>` to a log every 100 ms. The demo passes when, after the restore, the
 * ticks continue from the last one written before the checkpoint (not from 0) and the checksum, recomputed
 * from the restored memory, is unchanged. `--keep` keeps the image directory (to try `cryopod inspect`).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dumpProcess, restoreProcess, type DumpSummary } from '../checkpoint';

const WORKLOAD = path.resolve(__dirname, '..', '..', 'demo', 'bin', 'workload');
const MIB = 256;
const TICKS_BEFORE = 10;
const TICKS_AFTER = 10;
const QUIET_MS = 1000;

interface Tick {
  n: number;
  checksum: string;
  pid: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function readTicks(log: string): Tick[] {
  if (!fs.existsSync(log)) return [];
  const ticks: Tick[] = [];
  const lines = fs.readFileSync(log, 'utf8').split('\n');
  lines.pop(); // the text after the last newline: empty, or a line still being written
  for (const line of lines) {
    const m = /^tick (\d+) checksum ([0-9a-f]{16}) pid (\d+)$/.exec(line);
    if (m) ticks.push({ n: Number(m[1]), checksum: m[2], pid: Number(m[3]) });
  }
  return ticks;
}

async function waitForTicks(log: string, count: number, timeoutMs: number, what: string): Promise<Tick[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ticks = readTicks(log);
    if (ticks.length >= count) return ticks;
    if (Date.now() > deadline) {
      throw new Error(`${what}: only ${ticks.length} of ${count} log lines after ${timeoutMs / 1000} s`);
    }
    await sleep(50);
  }
}

/**
 * Starts `file args` in a new session with stdio on /dev/null and returns its PID. It is not our child:
 * a shell starts it in the background and exits, so the kernel hands it to init. The dumper refuses to
 * dump a child of its own process, whose stops Node's child reaping would steal.
 */
function startDetached(file: string, args: string[], cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const sh = spawn('/bin/sh', ['-c', 'setsid "$0" "$@" </dev/null >/dev/null 2>&1 & echo $!', file, ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    sh.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    sh.once('error', reject);
    sh.once('close', (code) => {
      const pid = Number(out.trim());
      if (code === 0 && Number.isInteger(pid) && pid > 0) resolve(pid);
      else reject(new Error(`cannot start ${file} (sh exited with ${code}, printed ${JSON.stringify(out)})`));
    });
  });
}

/** True while the process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const secs = (s: number) => `${s.toFixed(2)} s`;
const say = (step: string, text: string) => console.log(`  ${step.padEnd(10)} ${text}`);

async function main(argv: string[]): Promise<number> {
  const keep = argv.includes('--keep');
  if (!fs.existsSync(WORKLOAD)) {
    console.error(`demo: ${WORKLOAD} is missing: run \`npm run build\` first`);
    return 1;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-demo-'));
  const log = path.join(work, 'workload.log');
  const images = path.join(work, 'images');
  fs.mkdirSync(images);

  const pids = new Set<number>(); // every process we started, killed on the way out whatever happens
  const killAll = () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  process.on('exit', killAll);

  console.log(`cryopod demo: checkpoint and restore a process holding ${MIB} MiB (work dir ${work})`);
  let ok = false;
  let dump: DumpSummary | undefined;
  let restoreSeconds = 0;
  let imageBytes = 0;
  try {
    // 1. Start the workload, detached, stdio on /dev/null, and let it tick.
    const pid = await startDetached(WORKLOAD, [log, String(MIB)], work);
    pids.add(pid);
    const before = await waitForTicks(log, TICKS_BEFORE, 30_000, 'workload');
    const first = before[0];
    say('workload', `pid ${pid}, ${MIB} MiB filled, tick ${before[before.length - 1].n}, checksum ${first.checksum}`);

    // 2. Checkpoint it; the dump kills it.
    dump = await dumpProcess({ pid, dir: images });
    imageBytes = dirBytes(images);
    say(
      'dump',
      `frozen ${secs(dump.frozenSeconds)}, total ${secs(dump.totalSeconds)}: ${dump.pages} pages ` +
        `(${mib(dump.bytes)}), ${dump.vmas} VMAs, image ${mib(imageBytes)}`,
    );
    if (!(await waitGone(pid, 5000))) throw new Error(`pid ${pid} is still running after the dump (it should have been killed)`);
    pids.delete(pid);

    // 3. Show that it is really gone: the log does not move.
    const lastBefore = readTicks(log);
    await sleep(QUIET_MS);
    const stillBefore = readTicks(log);
    if (stillBefore.length !== lastBefore.length) throw new Error('the log still grows after the dump killed the workload');
    const last = lastBefore[lastBefore.length - 1];
    say('killed', `pid ${pid} is gone; log stopped at tick ${last.n} (no new line in ${QUIET_MS / 1000} s)`);

    // 4. Restore it.
    const restored = await restoreProcess({ dir: images });
    restoreSeconds = restored.seconds;
    pids.add(restored.pid);
    const kept = restored.pid === pid ? 'its saved PID, free again' : 'a new PID: the saved one was still in use';
    say('restore', `pid ${restored.pid} in ${secs(restored.seconds)} (${kept})`);

    // 5. It goes on: the next tick follows the last one, and the memory is what it was.
    const after = (await waitForTicks(log, lastBefore.length + TICKS_AFTER, 15_000, 'restored workload')).slice(
      lastBefore.length,
    );
    const problems: string[] = [];
    if (after[0].n !== last.n + 1) problems.push(`first tick after restore is ${after[0].n}, expected ${last.n + 1}`);
    for (let i = 1; i < after.length; i++) {
      if (after[i].n !== after[i - 1].n + 1) problems.push(`tick ${after[i - 1].n} is followed by ${after[i].n}`);
    }
    const wrongSum = after.find((t) => t.checksum !== first.checksum);
    if (wrongSum) problems.push(`checksum at tick ${wrongSum.n} is ${wrongSum.checksum}, was ${first.checksum}`);
    const wrongPid = after.find((t) => t.pid !== restored.pid);
    if (wrongPid) problems.push(`tick ${wrongPid.n} was written by pid ${wrongPid.pid}, not ${restored.pid}`);
    if (problems.length) throw new Error(problems.join('; '));
    say('continued', `ticks ${after[0].n}..${after[after.length - 1].n}, checksum ${first.checksum} unchanged`);

    // 6. Stop the restored process.
    process.kill(restored.pid, 'SIGKILL');
    if (!(await waitGone(restored.pid, 5000))) throw new Error(`restored pid ${restored.pid} did not die on SIGKILL`);
    pids.delete(restored.pid);
    ok = true;
  } catch (err) {
    console.log(`  FAILED     ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    killAll();
  }

  const timings = dump
    ? `dump frozen ${secs(dump.frozenSeconds)}, dump total ${secs(dump.totalSeconds)}, ` +
      `restore ${secs(restoreSeconds)}, image ${mib(imageBytes)}`
    : 'no checkpoint was taken';
  console.log(`${ok ? 'PASS' : 'FAIL'}: ${timings}`);
  if (ok && !keep) {
    fs.rmSync(work, { recursive: true, force: true });
  } else {
    console.log(`images kept in ${images} (try: npx cryopod inspect ${images})`);
  }
  return ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`demo: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);
