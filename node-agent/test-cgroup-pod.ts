/**
 * Integration-test helper: a "container" without a container runtime. A real process (testdata/counter.c)
 * is moved into a cgroup this helper creates, whose path holds the pod UID and the container ID as kubelet
 * would name it (cgroupfs driver):
 *
 *   v1:  /sys/fs/cgroup/freezer/kubepods/besteffort/pod<uid>/<container id>
 *   v2:  <unified mount>/kubepods/besteffort/pod<uid>/<container id>
 *
 * destroy() kills the process (thawing the cgroup first) and removes the cgroups.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readCgroupMounts } from './cgroup-mounts';
import { FreezerRef, thaw } from './freezer';
import { readStatus } from './procfs';

let builtBinary: string | undefined;

export function buildCounter(): string {
  if (builtBinary) return builtBinary;
  // One binary per version of the source, reused by later runs (nothing new left in /tmp each run).
  const src = path.join(__dirname, 'testdata', 'counter.c');
  const hash = crypto.createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 16);
  const out = path.join(os.tmpdir(), `cryopod-agent-counter-${hash}`);
  if (!fs.existsSync(out)) {
    execFileSync('cc', ['-O1', '-Wall', '-o', `${out}.${process.pid}`, src]);
    fs.renameSync(`${out}.${process.pid}`, out);
  }
  builtBinary = out;
  return out;
}

export interface FakeContainer {
  pid: number;
  containerID: string;
  freezer: FreezerRef;
  podFreezer: FreezerRef;
  stateFile: string;
  /** The counter and the pattern check the process last wrote. */
  state(): { counter: number; ok: boolean };
  destroy(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startFakeContainer(kind: 'v1' | 'v2', podUid: string): Promise<FakeContainer> {
  const bin = buildCounter();
  const mounts = readCgroupMounts();
  const mount = kind === 'v1' ? mounts.freezerV1 : mounts.v2;
  if (!mount) throw new Error(`no cgroup ${kind} freezer hierarchy on this machine`);
  const id = crypto.randomBytes(32).toString('hex');
  const podDir = path.join(mount.mountPoint, 'kubepods', 'besteffort', `pod${podUid}`);
  const dir = path.join(podDir, id);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-ctr-'));
  const pidFile = path.join(tmp, 'pid');
  const stateFile = path.join(tmp, 'state');
  const devnull = fs.openSync('/dev/null', 'r+');
  const r = spawnSync(bin, [pidFile, stateFile], { stdio: [devnull, devnull, devnull] });
  fs.closeSync(devnull);
  if (r.status !== 0) throw new Error(`counter failed to start: ${r.status}`);
  let pid = 0;
  for (let i = 0; i < 200 && !pid; i++) {
    const t = fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').trim() : '';
    if (t) pid = Number(t);
    else await sleep(10);
  }
  if (!pid) throw new Error('counter did not write its pid');
  fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
  const freezer = { kind, path: dir };
  const podFreezer = { kind, path: podDir };
  const state = (): { counter: number; ok: boolean } => {
    const [c, ok] = fs.readFileSync(stateFile, 'utf8').trim().split(' ');
    return { counter: Number(c), ok: ok === '1' };
  };
  return {
    pid,
    containerID: `containerd://${id}`,
    freezer,
    podFreezer,
    stateFile,
    state,
    destroy: async () => {
      for (const ref of [podFreezer, freezer]) if (fs.existsSync(ref.path)) await thaw(ref).catch(() => undefined);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      for (let i = 0; i < 200 && readStatus(pid) && readStatus(pid)?.state !== 'Z'; i++) await sleep(10);
      for (let i = 0; i < 100; i++) {
        try {
          for (const d of [dir, podDir]) if (fs.existsSync(d)) fs.rmdirSync(d);
          break;
        } catch {
          await sleep(20);
        }
      }
      for (const d of [path.dirname(podDir), path.dirname(path.dirname(podDir))]) {
        try {
          fs.rmdirSync(d); // shared by other fake pods: only when empty
        } catch {
          // in use or gone
        }
      }
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

export interface StubContainer {
  /** The stub's PID (after a successful restore: the restored process's). */
  pid: number;
  containerID: string;
  dir: string;
  destroy(): Promise<void>;
}

/**
 * A restore pod's app container without a runtime: a real cryopod-stub started as a container runtime
 * would start the stub command, in a cgroup named like the restore pod's container. The stub is detached
 * (setsid -f: not a child of the test process, so nothing here waits on it or its ptrace stops) and has
 * no fd 3, so it pauses until it is morphed. Its PID is read from the cgroup.
 */
export async function startStubContainer(kind: 'v1' | 'v2', podUid: string, stubPath: string): Promise<StubContainer> {
  const mounts = readCgroupMounts();
  const mount = kind === 'v1' ? mounts.freezerV1 : mounts.v2;
  if (!mount) throw new Error(`no cgroup ${kind} freezer hierarchy on this machine`);
  const id = crypto.randomBytes(32).toString('hex');
  const podDir = path.join(mount.mountPoint, 'kubepods', 'besteffort', `pod${podUid}`);
  const dir = path.join(podDir, id);
  fs.mkdirSync(dir, { recursive: true });
  // The shell enters the cgroup, closes fd 3, and setsid -f forks the stub away (the shell exits).
  const r = spawnSync('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec 3>&- && exec setsid -f "$0" </dev/null >/dev/null 2>&1', stubPath, dir], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`could not start the stub: sh exited ${r.status}`);
  const procsFile = path.join(dir, 'cgroup.procs');
  let pid = 0;
  for (let i = 0; i < 300 && !pid; i++) {
    const pids = fs.readFileSync(procsFile, 'utf8').split('\n').filter(Boolean).map(Number);
    const exe = pids.length === 1 ? (() => { try { return fs.readlinkSync(`/proc/${pids[0]}/exe`); } catch { return ''; } })() : '';
    if (exe.endsWith('/cryopod-stub')) pid = pids[0];
    else await sleep(10);
  }
  if (!pid) throw new Error(`the stub did not appear alone in ${procsFile}`);
  return {
    pid,
    containerID: `containerd://${id}`,
    dir,
    destroy: async () => {
      const ref: FreezerRef = { kind, path: dir };
      if (fs.existsSync(dir)) await thaw(ref).catch(() => undefined);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      for (let i = 0; i < 200 && readStatus(pid) && readStatus(pid)?.state !== 'Z'; i++) await sleep(10);
      for (let i = 0; i < 100; i++) {
        try {
          for (const d of [dir, podDir]) if (fs.existsSync(d)) fs.rmdirSync(d);
          break;
        } catch {
          await sleep(20);
        }
      }
      for (const d of [path.dirname(podDir), path.dirname(path.dirname(podDir))]) {
        try {
          fs.rmdirSync(d);
        } catch {
          // in use or gone
        }
      }
    },
  };
}
