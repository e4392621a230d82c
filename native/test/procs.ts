/**
 * Real processes for the native tests: start victims (native/test/victims, protocol in victim.h), wait for
 * them, look at them through /proc, and clean up every process and directory a test made.
 *
 * This module knows nothing of Cryopod itself (harness.ts adds dump and restore), so it can be used to
 * check the victims on their own.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const VICTIMS_DIR = path.join(__dirname, 'victims');

let victimsBuilt = false;

/** Builds the victims once per jest worker (make is a no-op when they are up to date). */
export function buildVictims(): void {
  if (victimsBuilt) return;
  execFileSync('make', ['-s', '-C', VICTIMS_DIR], { stdio: ['ignore', 'inherit', 'inherit'] });
  victimsBuilt = true;
}

export function victimPath(name: string): string {
  return path.join(VICTIMS_DIR, 'bin', name);
}

// ---------------------------------------------------------------------------------------------------------
// Everything a test starts or creates is registered here and removed by cleanup().

const trackedPids = new Set<number>();
const tempDirs: string[] = [];
const mounts: string[] = [];

export function trackPid(pid: number): void {
  trackedPids.add(pid);
}

export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cryopod-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

/** Registers a mount point to unmount (lazily) in cleanup(), before its directory is removed. */
export function trackMount(dir: string): void {
  mounts.push(dir);
}

/**
 * Kills every tracked process (original victims, restored copies, helpers) and waits until each is gone
 * or a zombie, then unmounts and removes the temp dirs. Call it from afterEach/afterAll.
 */
export async function cleanup(): Promise<void> {
  for (const pid of trackedPids) {
    if (isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const pid of trackedPids) {
    await waitFor(() => !isAlive(pid), 10_000, `process ${pid} to die after SIGKILL`).catch(() => undefined);
  }
  trackedPids.clear();
  for (const m of mounts.splice(0)) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      // not mounted any more
    }
  }
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------------------
// Waiting.

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value other than undefined/false; throws a clear error on timeout. */
export async function waitFor<T>(
  probe: () => T | undefined | false,
  timeoutMs: number,
  what: string,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function readFileOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// /proc.

/** The fields of /proc/PID/status, or null when the process does not exist. */
export function procStatus(pid: number): Record<string, string> | null {
  const text = readFileOrUndefined(`/proc/${pid}/status`);
  if (text === undefined) return null;
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** The one-letter state (R, S, D, T, t, Z, X, ...) or null when the process does not exist. */
export function procState(pid: number): string | null {
  const s = procStatus(pid);
  return s ? s.State.charAt(0) : null;
}

/** Exists and is neither a zombie nor dead. */
export function isAlive(pid: number): boolean {
  const st = procState(pid);
  return st !== null && st !== 'Z' && st !== 'X';
}

/** Fields of /proc/PID/stat after the comm: index 0 is the state (field 3 of proc(5)). */
function procStatFields(pid: number): string[] | null {
  const text = readFileOrUndefined(`/proc/${pid}/stat`);
  if (text === undefined) return null;
  return text.slice(text.lastIndexOf(')') + 2).trim().split(/\s+/);
}

export function procPpid(pid: number): number | null {
  const f = procStatFields(pid);
  return f ? Number(f[1]) : null;
}

/** utime + stime in clock ticks. */
export function procCpuTicks(pid: number): number | null {
  const f = procStatFields(pid);
  return f ? Number(f[11]) + Number(f[12]) : null;
}

export interface MapsLine {
  start: number;
  end: number;
  perms: string;
  offset: number;
  dev: string;
  inode: number;
  name: string;
}

export function readMaps(pid: number): MapsLine[] {
  return fs
    .readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$/.exec(l);
      if (!m) throw new Error(`cannot parse /proc/${pid}/maps line: ${l}`);
      return {
        start: parseInt(m[1], 16),
        end: parseInt(m[2], 16),
        perms: m[3],
        offset: parseInt(m[4], 16),
        dev: m[5],
        inode: Number(m[6]),
        name: m[7],
      };
    });
}

/** A maps line as one comparable string: range, perms, offset and name (device and inode left out). */
export function mapsKey(l: MapsLine): string {
  return `${l.start.toString(16)}-${l.end.toString(16)} ${l.perms} ${l.offset.toString(16)} ${l.name}`;
}

/** fd number -> link target of /proc/PID/fd. */
export function readFds(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.set(Number(fd), fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Every process on the machine: pid -> { ppid, state }. */
export function allProcesses(): Map<number, { ppid: number; state: string }> {
  const out = new Map<number, { ppid: number; state: string }>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const f = procStatFields(Number(e));
    if (f) out.set(Number(e), { ppid: Number(f[1]), state: f[0] });
  }
  return out;
}

/** Pids of the processes (any state, zombies included) whose parent is `ppid`. */
export function childrenOf(ppid: number): number[] {
  return [...allProcesses()].filter(([, p]) => p.ppid === ppid).map(([pid]) => pid);
}

/** Pids of live processes whose executable's file name is `base` (e.g. 'cryopod-stub'). */
export function processesRunning(base: string): number[] {
  const out: number[] = [];
  for (const [pid] of allProcesses()) {
    try {
      const exe = fs.readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
      if (path.basename(exe) === base) out.push(pid);
    } catch {
      // kernel thread, zombie, or gone
    }
  }
  return out;
}

/**
 * Asserts that a process is running normally: alive (not Z/X), none of its threads stopped or
 * ptrace-stopped (t/T) or traced (TracerPid 0). Throws with the offending status otherwise.
 */
export function assertRunningUntraced(pid: number, what: string): void {
  const s = procStatus(pid);
  if (!s) throw new Error(`${what} (pid ${pid}) is gone`);
  if ('ZX'.includes(s.State.charAt(0))) throw new Error(`${what} (pid ${pid}) is dead: State ${s.State}`);
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    tids = [String(pid)];
  }
  for (const tid of tids) {
    const t = readFileOrUndefined(`/proc/${pid}/task/${tid}/status`);
    if (t === undefined) continue;
    const state = /^State:\s*(.*)$/m.exec(t)?.[1] ?? '?';
    const tracer = /^TracerPid:\s*(\d+)$/m.exec(t)?.[1] ?? '?';
    if ('tT'.includes(state.charAt(0)) || tracer !== '0') {
      throw new Error(`${what} (pid ${pid}, thread ${tid}) is not running free: State ${state}, TracerPid ${tracer}`);
    }
  }
}

/** What a restored process must share with its original (compare with expectSameProcessState). */
export interface ProcSnapshot {
  exe: string;
  cwd: string;
  comm: string;
  maps: string[];
  fds: Record<string, string>;
  signals: { SigBlk: string; SigIgn: string; SigCgt: string };
}

/** Maps line as a comparable string: range, perms, offset, device:inode of files, name. */
export function mapsFullKey(l: MapsLine): string {
  return `${mapsKey(l)}${l.inode ? ` ${l.dev}:${l.inode}` : ''}`;
}

export function snapshot(pid: number): ProcSnapshot {
  const s = procStatus(pid);
  if (!s) throw new Error(`pid ${pid} is gone`);
  return {
    exe: fs.readlinkSync(`/proc/${pid}/exe`),
    cwd: fs.readlinkSync(`/proc/${pid}/cwd`),
    comm: fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(),
    maps: readMaps(pid).map(mapsFullKey),
    fds: Object.fromEntries([...readFds(pid)].map(([fd, target]) => [String(fd), target])),
    signals: { SigBlk: s.SigBlk, SigIgn: s.SigIgn, SigCgt: s.SigCgt },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Victims.

export interface Victim {
  name: string;
  pid: number;
  workdir: string;
}

/**
 * Starts `file args... <workdir>` detached (`setsid -f`: a new session, stdio /dev/null, reparented to
 * init), and waits until it writes <workdir>/ready holding its pid. Victims must not be children of this
 * process: libuv reaps the children Node spawned and would swallow the ptrace stops of a dump (the core
 * refuses them).
 */
export async function startProgram(
  name: string,
  file: string,
  args: string[],
  opts: { workdir?: string; readyTimeoutMs?: number } = {},
): Promise<Victim> {
  const workdir = opts.workdir ?? makeTempDir(name);
  const launcher = spawn('setsid', ['-f', file, ...args, workdir], { stdio: 'ignore', cwd: '/' });
  const launched = await new Promise<number | null>((resolve) => {
    launcher.on('exit', (code) => resolve(code));
    launcher.on('error', () => resolve(-1));
  });
  if (launched !== 0) throw new Error(`setsid -f ${file} failed (exit ${launched})`);
  const ready = await waitFor(
    () => readFileOrUndefined(path.join(workdir, 'ready')),
    opts.readyTimeoutMs ?? 30_000,
    `${name} to write ${workdir}/ready`,
  );
  const pid = Number(ready.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${name}: ready holds "${ready.trim()}", not a pid`);
  trackPid(pid);
  if (!isAlive(pid)) throw new Error(`${name} (pid ${pid}) died right after it was ready`);
  const exe = path.basename(fs.readlinkSync(`/proc/${pid}/exe`));
  if (!path.basename(file).startsWith(exe.replace(/\.\d+$/, ''))) {
    throw new Error(`${name}: pid ${pid} from the ready file runs ${exe}, not ${file}`);
  }
  return { name, pid, workdir };
}

/**
 * Waits until `pid` is no longer alive. Returns how it ended when it is seen as a zombie (exit_code of
 * /proc/PID/stat), or nulls when it was already reaped (by init, which adopts the detached victims).
 */
export async function waitGone(
  pid: number,
  what: string,
  timeoutMs = 10_000,
): Promise<{ code: number | null; signal: number | null }> {
  let last: { code: number | null; signal: number | null } = { code: null, signal: null };
  await waitFor(
    () => {
      const f = procStatFields(pid);
      if (f === null) return true;
      if (f[0] === 'Z' || f[0] === 'X') {
        const status = Number(f[49]);
        last = status & 0x7f ? { code: null, signal: status & 0x7f } : { code: status >> 8, signal: null };
        return true;
      }
      return false;
    },
    timeoutMs,
    `${what} (pid ${pid}) to end (State ${procState(pid)})`,
  );
  return last;
}

export async function startVictim(name: string, opts: { readyTimeoutMs?: number } = {}): Promise<Victim> {
  buildVictims();
  return startProgram(name, victimPath(name), [], opts);
}

/** Creates <workdir>/check and returns the victim's verdict from <workdir>/result ("PASS" or "FAIL: ..."). */
export async function requestCheck(workdir: string, timeoutMs = 30_000): Promise<string> {
  fs.writeFileSync(path.join(workdir, 'check'), '');
  const result = await waitFor(
    () => readFileOrUndefined(path.join(workdir, 'result')),
    timeoutMs,
    `a verdict in ${workdir}/result`,
  );
  return result.trim();
}

/** Reads <workdir>/progress as a number (undefined before the first write). */
export function readProgress(workdir: string): number | undefined {
  const t = readFileOrUndefined(path.join(workdir, 'progress'));
  return t === undefined || t.trim() === '' ? undefined : Number(t.trim());
}

/** Waits until the victim's progress counter exceeds `after` (+ `by`), and returns it. */
export async function waitForProgress(workdir: string, after: number, what: string, by = 1, timeoutMs = 10_000): Promise<number> {
  return waitFor(
    () => {
      const p = readProgress(workdir);
      return p !== undefined && p >= after + by ? p : undefined;
    },
    timeoutMs,
    `${what} to make progress past ${after} (+${by}) in ${workdir}/progress (now ${readProgress(workdir)})`,
  );
}

/** Waits until the process has used `ticks` more clock ticks of CPU time. */
export async function waitForCpu(pid: number, what: string, ticks = 5, timeoutMs = 10_000): Promise<number> {
  const start = procCpuTicks(pid);
  if (start === null) throw new Error(`${what} (pid ${pid}) is gone`);
  return waitFor(
    () => {
      const now = procCpuTicks(pid);
      return now !== null && now >= start + ticks ? now : undefined;
    },
    timeoutMs,
    `${what} (pid ${pid}) to use CPU time (${start} ticks at start)`,
  );
}
