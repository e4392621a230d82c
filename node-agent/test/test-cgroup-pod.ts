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
import { readCgroupMounts } from '../cgroup-mounts';
import { FreezerRef, thaw } from '../freezer';
import { readStatus } from '../procfs';

/** The programs in testdata/ a fake container can run. */
export type TestProgram = 'counter' | 'counter-family';
const built = new Map<TestProgram, string>();

export function buildCounter(program: TestProgram = 'counter'): string {
  const done = built.get(program);
  if (done) return done;
  // One binary per version of the source, reused by later runs (nothing new left in /tmp each run).
  const src = path.join(__dirname, '..', 'testdata', `${program}.c`);
  const hash = crypto.createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 16);
  const out = path.join(os.tmpdir(), `cryopod-agent-${program}-${hash}`);
  if (!fs.existsSync(out)) {
    execFileSync('cc', ['-O1', '-Wall', '-o', `${out}.${process.pid}`, src]);
    fs.renameSync(`${out}.${process.pid}`, out);
  }
  built.set(program, out);
  return out;
}

/** The process and its descendants, parents first. */
export function withDescendants(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const tid of fs.readdirSync(`/proc/${out[i]}/task`)) {
        const kids = fs.readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      // gone
    }
  }
  return out;
}

export interface FakeContainer {
  pid: number;
  containerID: string;
  freezer: FreezerRef;
  podFreezer: FreezerRef;
  stateFile: string;
  /** The counter and the pattern check the process last wrote (counter-family: and the IDs it sees). */
  state(): { counter: number; ok: boolean; ids: number[] };
  destroy(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Kills a fake container's process, waits until it is gone, and removes its cgroups (and the shared
 * QoS-class parents when no other fake pod uses them). */
async function killAndRemove(pid: number, dir: string, podDir: string): Promise<void> {
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
}

/** A fresh container cgroup (random 64-hex id, as containerd names them) under a pod cgroup named like the kubelet's. */
function makeContainerCgroup(kind: 'v1' | 'v2', podUid: string): { id: string; podDir: string; dir: string } {
  const mounts = readCgroupMounts();
  const mount = kind === 'v1' ? mounts.freezerV1 : mounts.v2;
  if (!mount) throw new Error(`no cgroup ${kind} freezer hierarchy on this machine`);
  const id = crypto.randomBytes(32).toString('hex');
  const podDir = path.join(mount.mountPoint, 'kubepods', 'besteffort', `pod${podUid}`);
  const dir = path.join(podDir, id);
  fs.mkdirSync(dir, { recursive: true });
  return { id, podDir, dir };
}

export async function startFakeContainer(kind: 'v1' | 'v2', podUid: string, program: TestProgram = 'counter'): Promise<FakeContainer> {
  const bin = buildCounter(program);
  const { id, podDir, dir } = makeContainerCgroup(kind, podUid);
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
  // The process and whatever it forked before it was moved (children forked later are born inside: the
  // kernel orders a fork against a migration, so once this write returns no child can land outside).
  fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
  for (const p of withDescendants(pid)) fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(p));
  // Started once it has counted: its first state is written after it filled its 4 MiB pattern.
  for (let i = 0; i < 500 && !fs.existsSync(stateFile); i++) await sleep(10);
  if (!fs.existsSync(stateFile)) throw new Error(`counter ${pid} wrote no state within 5 s`);
  const freezer = { kind, path: dir };
  const podFreezer = { kind, path: podDir };
  const state = (): { counter: number; ok: boolean; ids: number[] } => {
    const [c, ok, ...ids] = fs.readFileSync(stateFile, 'utf8').trim().split(' ');
    return { counter: Number(c), ok: ok === '1', ids: ids.map(Number) };
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
      await killAndRemove(pid, dir, podDir);
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** A process someone else started (e.g. a native/test victim), moved into a fresh container cgroup of the pod. */
export interface AdoptedContainer {
  pid: number;
  containerID: string;
  freezer: FreezerRef;
  podFreezer: FreezerRef;
  /** Thaws, kills the process and removes the cgroups. */
  destroy(): Promise<void>;
}

export function adoptIntoFakeContainer(kind: 'v1' | 'v2', podUid: string, pid: number): AdoptedContainer {
  const { id, podDir, dir } = makeContainerCgroup(kind, podUid);
  fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
  const freezer: FreezerRef = { kind, path: dir };
  const podFreezer: FreezerRef = { kind, path: podDir };
  return {
    pid,
    containerID: `containerd://${id}`,
    freezer,
    podFreezer,
    destroy: async () => {
      for (const ref of [podFreezer, freezer]) if (fs.existsSync(ref.path)) await thaw(ref).catch(() => undefined);
      await killAndRemove(pid, dir, podDir);
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
export async function startStubContainer(kind: 'v1' | 'v2', podUid: string, stubPath: string, opts: { pidNamespace?: boolean } = {}): Promise<StubContainer> {
  const { id, podDir, dir } = makeContainerCgroup(kind, podUid);
  // The shell enters the cgroup, closes fd 3, and setsid -f forks the stub away (the shell exits). With
  // pidNamespace the stub is the init of a PID namespace of its own, as a runtime starts a container's
  // command; unshare --fork, which waits for it, is killed once it runs (the stub is then alone).
  const launch = opts.pidNamespace ? 'exec setsid -f unshare --pid --fork "$0"' : 'exec setsid -f "$0"';
  const r = spawnSync('/bin/sh', ['-c', `echo $$ > "$1/cgroup.procs" && exec 3>&- && ${launch} </dev/null >/dev/null 2>&1`, stubPath, dir], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`could not start the stub: sh exited ${r.status}`);
  const procsFile = path.join(dir, 'cgroup.procs');
  const exeOf = (p: number): string => {
    try {
      return fs.readlinkSync(`/proc/${p}/exe`);
    } catch {
      return '';
    }
  };
  let pid = 0;
  for (let i = 0; i < 300 && !pid; i++) {
    const pids = fs.readFileSync(procsFile, 'utf8').split('\n').filter(Boolean).map(Number);
    if (opts.pidNamespace) for (const p of pids) if (exeOf(p).endsWith('/unshare') && pids.some((q) => exeOf(q).endsWith('/cryopod-stub'))) process.kill(p, 'SIGKILL');
    if (pids.length === 1 && exeOf(pids[0]).endsWith('/cryopod-stub')) pid = pids[0];
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
      await killAndRemove(pid, dir, podDir);
    },
  };
}
