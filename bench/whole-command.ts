/**
 * Whole commands, as a user times them: `cryopod dump` / `cryopod restore` (node startup included)
 * against `criu dump` / `criu restore` of CRIU built from its source ($CRIU), in the same run, on the
 * same kind of ticker victim (bench/victim.c with a tick log), images in /dev/shm. Medians of `rounds`;
 * within each round the two tools alternate (and swap places every other round), so both see the machine
 * in the same state. Each tool gets a fresh victim in each round (one at a time, so a 4 GiB run needs the
 * victim, its image and nothing more): CRIU 4.2 could not seize a victim Cryopod had just restored
 * (PTRACE_INTERRUPT: EPERM, seen only when run from this harness; not understood yet).
 *
 *   per round   cryopod dump --leave-running     criu dump --leave-running       (stall read from the victim)
 *               cryopod dump (kill) + restore    criu dump (kill) + restore -d   (each restores its own images;
 *                                                                                 the restored victim is the next one)
 *
 * The stall is the longest gap between the victim's 1 ms ticks during the command (its own clock);
 * "first tick" is when the restored victim first ran, from the restore command's start.
 *
 * Cryopod only, beside its eager restore (before it in odd rounds, after it in even ones; each copy is
 * killed before the other starts): `cryopod restore --lazy` of the same images. The command returns
 * once the task is fully resident (it serves the pages until then), so its whole time is "fully
 * resident"; "first tick" is read from the tick log as for the eager restore.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export interface ToolFigures {
  /** Leave-running dump: whole command, and the victim's longest stall during it. */
  dumpRunning: number;
  stall: number;
  /** Dump that kills the victim (migration), whole command. */
  dumpKill: number;
  /** The same until the victim is dead (a zombie or gone: cryopod dump waits for that itself, criu dump does not). */
  dumpKillGone: number;
  /** Restore, whole command; first tick of the restored victim from the command's start. */
  restore: number;
  firstTick: number;
  /** cryopod only: `restore --lazy` of the same images: first tick and fully resident from the command's start, and its own "running after". */
  lazy?: { firstTick: number; resident: number; running: number };
  /** cryopod only: the command's own phases (from its output), and node startup before them. */
  phases?: { frozenRunning: number; dumpInProcess: number; verify: number; morph: number; restoreInProcess: number };
}

export interface WholeResult {
  mib: number;
  cryopod: ToolFigures;
  criu?: ToolFigures;
}

interface Timed {
  seconds: number;
  startNs: bigint;
  endNs: bigint;
  stdout: string;
  stderr: string;
}

/** CLOCK_REALTIME in ns (the victim's log clock), to a microsecond. */
function realtimeNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

function run(cmd: string, args: string[]): Timed {
  if (process.env.CRYOPOD_BENCH_TRACE) process.stderr.write(`  + ${path.basename(cmd)} ${args.join(' ')}\n`);
  const startNs = realtimeNs();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const endNs = startNs + BigInt(Math.round(seconds * 1e9));
  if (r.status !== 0) {
    // CRIU writes its errors into the log in the image directory (-o NAME, under -D DIR).
    const dir = args[args.indexOf('-D') + 1];
    const log = args.includes('-o') && args.includes('-D') ? path.join(dir, args[args.indexOf('-o') + 1]) : '';
    const logTail = log && fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-40).join('\n') : '';
    throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).slice(-800)}${logTail}`);
  }
  return { seconds, startNs, endNs, stdout: r.stdout, stderr: r.stderr };
}

/** The victim's tick log: [realtime ns, gap ns] per line. */
function ticks(log: string): Array<[bigint, number]> {
  return fs
    .readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [t, gap] = l.split(' ');
      return [BigInt(t), Number(gap) / 1e9] as [bigint, number];
    });
}

/** Longest gap the victim saw that ended within [from, to + 1 s] (its line is written right after it). */
function stallIn(log: string, from: bigint, to: bigint): number {
  let worst = 0;
  for (const [t, gap] of ticks(log)) if (t >= from && t <= to + 1_000_000_000n) worst = Math.max(worst, gap);
  return worst;
}

/** Waits (deadline 10 s) for the restored victim's first tick after `from`; seconds from `from`. */
async function firstTickAfter(log: string, from: bigint): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const first = ticks(log).find(([t]) => t > from);
    if (first) return Number(first[0] - from) / 1e9;
    if (Date.now() > deadline) throw new Error('the restored victim did not tick within 10 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Waits for the task to be dead (a zombie, or gone); the seconds it took. */
async function pidDead(pid: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + 10_000;
  for (;;) {
    let stat = '';
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      break; // gone
    }
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) break;
    if (Date.now() > deadline) throw new Error(`pid ${pid} did not die within 10 s of its dump`);
    await new Promise((r) => setTimeout(r, 1));
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Waits for the PID to be free; the seconds it took. */
async function pidGone(pid: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + 10_000;
  while (fs.existsSync(`/proc/${pid}`)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} was not reaped within 10 s of its dump`);
    await new Promise((r) => setTimeout(r, 1));
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function num(text: string, re: RegExp, what: string): number {
  const m = re.exec(text);
  if (!m) throw new Error(`no ${what} in: ${text}`);
  return Number(m[1]) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

interface Tool {
  name: 'cryopod' | 'criu';
  dump(pid: number, dir: string, leaveRunning: boolean): Timed;
  restore(dir: string): Timed;
  restoreLazy?(dir: string): Timed;
}

function cryopodTool(root: string): Tool {
  const cli = path.join(root, 'bin', 'cryopod.js');
  return {
    name: 'cryopod',
    dump: (pid, dir, leaveRunning) => run(process.execPath, [cli, 'dump', '--pid', String(pid), '--dir', dir, ...(leaveRunning ? ['--leave-running'] : [])]),
    restore: (dir) => run(process.execPath, [cli, 'restore', '--dir', dir]),
    restoreLazy: (dir) => run(process.execPath, [cli, 'restore', '--dir', dir, '--lazy']),
  };
}

function criuTool(criu: string): Tool {
  return {
    name: 'criu',
    dump: (pid, dir, leaveRunning) => run(criu, ['dump', '-t', String(pid), '-D', dir, '--shell-job', ...(leaveRunning ? ['--leave-running'] : []), '-o', 'dump.log']),
    restore: (dir) => run(criu, ['restore', '-D', dir, '--shell-job', '-d', '-o', 'restore.log']),
  };
}

export interface Ticker {
  pid: number;
  log: string;
}

/**
 * One size: in each round, each tool gets a fresh ticker (`startTicker`), dumps it leaving it running,
 * dumps it again killing it, and restores it (with its PID); the restored copy is killed. Returns the medians.
 */
export async function wholeCommands(opts: { root: string; criu?: string; mib: number; startTicker: (tool: string) => Promise<Ticker>; work: string; rounds: number }): Promise<WholeResult> {
  const tools = [cryopodTool(opts.root), ...(opts.criu ? [criuTool(opts.criu)] : [])];
  const samples = new Map<string, Array<ToolFigures>>(tools.map((t) => [t.name, []]));
  for (let round = 0; round < opts.rounds; round++) {
    const order = round % 2 === 0 ? tools : [...tools].reverse();
    for (const tool of order) {
      const { pid, log } = await opts.startTicker(tool.name);
      const dir = fs.mkdtempSync(path.join(opts.work, `${tool.name}-`));
      try {
        const running = tool.dump(pid, dir, true);
        const stall = stallIn(log, running.startNs, running.endNs);
        fs.rmSync(dir, { recursive: true, force: true });
        fs.mkdirSync(dir, { mode: 0o700 });
        const kill = tool.dump(pid, dir, false);
        // criu dump returns once it sent SIGKILL; the PID is free only once the parent reaped it (cryopod
        // dump waits for that itself, inside its time). Not counted for CRIU.
        const dead = await pidDead(pid);
        // Its PID is free only once its parent reaped it (here the harness's subreaper, whenever it gets
        // to it): both tools restore with the saved PID, so both wait for that, uncounted.
        await pidGone(pid);
        // cryopod: its eager restore and `restore --lazy` of the same images, in turns (which goes first
        // alternates by round); each restored copy is killed before the other starts (it holds the PID).
        const eager = async (): Promise<{ restore: Timed; firstTick: number }> => {
          const restore = tool.restore(dir);
          return { restore, firstTick: await firstTickAfter(log, restore.startNs) };
        };
        const lazy = async (): Promise<NonNullable<ToolFigures['lazy']>> => {
          const t = (tool.restoreLazy as (d: string) => Timed)(dir);
          const lazyPid = Number(t.stdout.trim().split('\n')[0]);
          try {
            if (!/fully resident after/.test(t.stderr)) throw new Error(`cryopod restore --lazy did not serve lazily: ${t.stderr}`);
            return { firstTick: await firstTickAfter(log, t.startNs), resident: t.seconds, running: num(t.stderr, /running after ([\d.]+) ms/, 'running time') };
          } finally {
            if (lazyPid > 0) process.kill(lazyPid, 'SIGKILL');
            if (lazyPid > 0) await pidGone(lazyPid);
          }
        };
        const lazyFirst = tool.restoreLazy !== undefined && round % 2 === 1;
        const lazyFigures = lazyFirst ? await lazy() : undefined;
        const { restore, firstTick } = await eager();
        const f: ToolFigures = { dumpRunning: running.seconds, stall, dumpKill: kill.seconds, dumpKillGone: kill.seconds + dead, restore: restore.seconds, firstTick };
        if (tool.name === 'cryopod') {
          f.phases = {
            frozenRunning: num(running.stdout, /frozen ([\d.]+) ms/, 'frozen time'),
            dumpInProcess: num(kill.stdout, /total ([\d.]+) ms/, 'total time'),
            verify: num(restore.stderr, /verify ([\d.]+) ms/, 'verify time'),
            morph: num(restore.stderr, /morph ([\d.]+) ms/, 'morph time'),
            restoreInProcess: num(restore.stderr, /restored in ([\d.]+) ms/, 'restore time'),
          };
        }
        if (lazyFigures) f.lazy = lazyFigures;
        else if (tool.restoreLazy) {
          process.kill(pid, 'SIGKILL');
          await pidGone(pid);
          f.lazy = await lazy();
        }
        samples.get(tool.name)?.push(f);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already (a failed restore)
        }
        await pidGone(pid);
      }
    }
  }
  const med = (xs: ToolFigures[]): ToolFigures => {
    const m = (get: (f: ToolFigures) => number): number => median(xs.map(get));
    const out: ToolFigures = {
      dumpRunning: m((f) => f.dumpRunning),
      stall: m((f) => f.stall),
      dumpKill: m((f) => f.dumpKill),
      dumpKillGone: m((f) => f.dumpKillGone),
      restore: m((f) => f.restore),
      firstTick: m((f) => f.firstTick),
    };
    if (xs[0].lazy) {
      const l = (get: (x: NonNullable<ToolFigures['lazy']>) => number): number => m((f) => get(f.lazy as NonNullable<ToolFigures['lazy']>));
      out.lazy = { firstTick: l((x) => x.firstTick), resident: l((x) => x.resident), running: l((x) => x.running) };
    }
    if (xs[0].phases) {
      const p = (get: (ph: NonNullable<ToolFigures['phases']>) => number): number => m((f) => get(f.phases as NonNullable<ToolFigures['phases']>));
      out.phases = { frozenRunning: p((x) => x.frozenRunning), dumpInProcess: p((x) => x.dumpInProcess), verify: p((x) => x.verify), morph: p((x) => x.morph), restoreInProcess: p((x) => x.restoreInProcess) };
    }
    return out;
  };
  const criuSamples = samples.get('criu');
  return { mib: opts.mib, cryopod: med(samples.get('cryopod') as ToolFigures[]), ...(criuSamples && criuSamples.length ? { criu: med(criuSamples) } : {}) };
}

const msOf = (s: number): string => `${(s * 1000).toFixed(0)} ms`;
const ratio = (criu: number | undefined, ours: number): string => (criu === undefined ? '' : ` = ${(criu / ours).toFixed(2)}x`);

/** The lines run.ts prints for one size (figures: cryopod / CRIU = how many times faster Cryopod is). */
export function formatWhole(r: WholeResult): string[] {
  const c = r.cryopod;
  const k = r.criu;
  const pair = (ours: number, theirs: number | undefined): string => `${msOf(ours)}${theirs === undefined ? '' : ` / ${msOf(theirs)}`}${ratio(theirs, ours)}`;
  const ph = c.phases;
  const lines = [
    `  whole commands (cryopod${k ? ' / CRIU, CRIU time over ours' : ''}), medians:`,
    `    dump, kill           ${pair(c.dumpKill, k?.dumpKill)}${k ? `   until the victim is dead ${pair(c.dumpKillGone, k.dumpKillGone)}` : ''}` +
      (ph ? `   (cryopod in-process ${msOf(ph.dumpInProcess)}, node startup and exit ${msOf(c.dumpKill - ph.dumpInProcess)})` : ''),
    `    dump, leave-running  ${pair(c.dumpRunning, k?.dumpRunning)}   stall inside the victim ${pair(c.stall, k?.stall)}${ph ? `   (cryopod frozen ${msOf(ph.frozenRunning)})` : ''}`,
    `    restore              ${pair(c.restore, k?.restore)}   first tick ${pair(c.firstTick, k?.firstTick)} after the command's start` +
      (ph ? `   (cryopod verify ${msOf(ph.verify)} + morph ${msOf(ph.morph)}, node startup and exit ${msOf(c.restore - ph.restoreInProcess)})` : ''),
  ];
  if (c.lazy) {
    const l = c.lazy;
    const yes = (ok: boolean): string => (ok ? 'met' : 'NOT MET');
    lines.push(
      `    restore --lazy       first tick ${msOf(l.firstTick)} after the command's start (in-process: running after ${msOf(l.running)}), ` +
        `fully resident ${msOf(l.resident)} = ${(l.resident / c.restore).toFixed(2)}x eager`,
      `    [target lazy: first tick <= 50 ms ${yes(l.firstTick <= 0.05)}, fully resident <= 1.2x eager ${yes(l.resident <= 1.2 * c.restore)}]`,
    );
  }
  if (k) {
    const met = (x: number): string => (x >= 1.2 ? 'met' : 'NOT MET');
    lines.push(`    [target >= 1.2x CRIU: dump (kill) ${met(k.dumpKill / c.dumpKill)}, restore ${met(k.restore / c.restore)}]`);
  }
  if (r.mib === 1024) lines.push(`    [target leave-running stall <= 30 ms at 1 GiB: ${c.stall <= 0.03 ? 'met' : 'NOT MET'}]`);
  return lines;
}

/** 4 GiB against 1 GiB: the cost must be linear in pages (at most 4.2x). */
export function formatScaling(results: WholeResult[]): string[] {
  const one = results.find((r) => r.mib === 1024);
  const four = results.find((r) => r.mib === 4096);
  if (!one || !four) return [];
  const x = (a: number, b: number): string => `${(b / a).toFixed(2)}x ${b / a <= 4.2 ? '(met)' : '(NOT MET)'}`;
  return [`\n4 GiB over 1 GiB (target <= 4.2x): dump ${x(one.cryopod.dumpKill, four.cryopod.dumpKill)}, restore ${x(one.cryopod.restore, four.cryopod.restore)}`];
}
