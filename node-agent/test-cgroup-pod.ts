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
