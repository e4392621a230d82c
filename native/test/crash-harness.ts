/**
 * What the dumper's crash tests share (crash-safety*.test.ts): a victim under an `sh` that records how it
 * ended, the dump's guards, and a real `cryopod dump` child held at its phases (`--phase-fd 3`) and
 * SIGKILLed at one of them.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { makeTempDir, procPpid, readFds, readFileOrUndefined, trackPid, victimPath, waitFor } from './procs';

export const CLI = path.join(__dirname, '..', '..', 'bin', 'cryopod.js');
export type Mode = 'plain' | 'leave-running';

export interface Target {
  /** The root of what is dumped. */
  pid: number;
  /** Every PID the victim reported ready (the root first; a tree's children after it). */
  pids: number[];
  workdir: string;
  /** Each process's fds, as fdList gives them. */
  fds: Map<number, string[]>;
}

/**
 * `victim` (native/test/victims) under `sh`, which writes the victim's exit status (128+N for signal N) to
 * exit-status in its workdir. Its ready file holds the PIDs it reports, the root's first.
 */
export async function startVictim(victim: string, tracked: number[]): Promise<Target> {
  const workdir = makeTempDir('crash');
  const launcher = spawn('setsid', ['-f', 'sh', '-c', '"$0" "$1"; echo $? > "$1/exit-status"', victimPath(victim), workdir], {
    stdio: 'ignore',
  });
  await new Promise((resolve) => launcher.on('exit', resolve));
  const ready = await waitFor(() => readFileOrUndefined(path.join(workdir, 'ready')), 10_000, `${victim} ready`);
  const pids = ready.trim().split(/\s+/).map(Number);
  for (const p of pids) trackPid(p);
  tracked.push(pids[0]);
  const holder = procPpid(pids[0]);
  if (holder && holder > 1) trackPid(holder);
  return { pid: pids[0], pids, workdir, fds: new Map(pids.map((p) => [p, fdList(p, workdir)])) };
}

/** Its fds but the files it opens for a moment in its workdir (progress, alive-N). */
export function fdList(pid: number, workdir: string): string[] {
  return [...readFds(pid)].filter(([, target]) => !target.startsWith(workdir)).map(([fd, target]) => `${fd} ${target}`).sort();
}

/** Guards (checkpoint/guard.ts) started for this pid: they outlive the dumper they watch. */
export function guardsOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const argv = (readFileOrUndefined(`/proc/${e}/cmdline`) ?? '').split('\0');
    if (argv.some((a) => a.endsWith('cryopod-guard')) && argv.includes(String(pid))) out.push(Number(e));
  }
  return out;
}

export function childrenOf(pid: number): string {
  let all = '';
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) all += readFileOrUndefined(`/proc/${pid}/task/${tid}/children`) ?? '';
  return all.trim();
}

export interface Dumper {
  child: ChildProcess;
  dir: string;
  exited: Promise<void>;
  stderr: () => string;
  /** The last phase it reported (the random runs let it go on at once: for the failure message). */
  lastPhase: () => string;
}

/**
 * `cryopod dump` of the target, stepped through its phases. `killAt`: SIGKILLed at that phase, or at its
 * n-th time with "name#n" (a tree dump infects, drains and reads each process in turn).
 */
export function startDumper(t: Target, mode: Mode, opts: { killAt?: string; dir?: string } = {}): Dumper {
  const dir = opts.dir ?? makeTempDir('crash-img');
  const args = ['dump', '--pid', String(t.pid), '--dir', dir, ...(mode === 'leave-running' ? ['--leave-running'] : []), '--phase-fd', '3'];
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  trackPid(child.pid!);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const [killName, killNth] = (opts.killAt ?? '').split('#');
  const times = new Map<string, number>();
  let last = '(none)';
  const hook = child.stdio[3] as unknown as import('net').Socket;
  let buf = '';
  hook.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      last = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const n = (times.get(last) ?? 0) + 1;
      times.set(last, n);
      if (last === killName && n === Number(killNth ?? 1)) child.kill('SIGKILL');
      else hook.write('x');
    }
  });
  hook.on('error', () => undefined);
  return { child, dir, exited, stderr: () => err, lastPhase: () => `${last}#${times.get(last) ?? 0}` };
}
