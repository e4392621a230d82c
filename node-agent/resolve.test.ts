/**
 * resolveContainers against a fake /proc and a fake cgroup mount (plain directories): the cgroup directory
 * from the path /proc shows (host cgroup namespace), and from the pod directory's name when the agent is in
 * a private cgroup namespace (paths like /../../kubepods/…, a mount root that is not the host's).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findDirsNamed, resolveContainers } from './resolve';

const UID = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
const ID = 'ab'.repeat(32);
let tmp: string;
let proc: string;
let cg: string;

function fakeProcess(pid: number, ppid: number, cgroupLine: string): void {
  const d = path.join(proc, String(pid));
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'cgroup'), cgroupLine + '\n');
  fs.writeFileSync(path.join(d, 'status'), `Name:\tx\nState:\tS (sleeping)\nPPid:\t${ppid}\nTracerPid:\t0\n`);
  fs.writeFileSync(path.join(d, 'stat'), `${pid} (x) S ${ppid} ${'0 '.repeat(17)}4242 0 0\n`);
}

function cgroupDirWith(rel: string, pids: number[]): string {
  const d = path.join(cg, rel);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'cgroup.procs'), pids.map((p) => `${p}\n`).join(''));
  return d;
}

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-resolve-'));
  proc = path.join(tmp, 'proc');
  cg = path.join(tmp, 'cgroup');
  fs.mkdirSync(proc);
  fs.mkdirSync(cg);
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ref = [{ name: 'app', containerID: `containerd://${ID}` }];

test('host cgroup namespace: the directory is the path /proc shows, under the mount', () => {
  const dir = cgroupDirWith(`kubepods/besteffort/pod${UID}/${ID}`, [100]);
  fakeProcess(100, 1, `0::/kubepods/besteffort/pod${UID}/${ID}`);
  const [c] = resolveContainers(UID, ref, { v2: { mountPoint: cg, root: '/' } }, proc);
  expect({ pid: c.mainPid, start: c.mainStartTime, freezer: c.freezer, pod: c.podFreezer.path }).toEqual({
    pid: 100,
    start: '4242',
    freezer: { kind: 'v2', path: dir },
    pod: path.dirname(dir),
  });
});

test('private cgroup namespace (systemd driver): found by the pod slice name, checked against cgroup.procs', () => {
  const slice = `kubepods-besteffort-pod${UID.replace(/-/g, '_')}.slice`;
  const dir = cgroupDirWith(`kubepods.slice/kubepods-besteffort.slice/${slice}/cri-containerd-${ID}.scope`, [200]);
  // A decoy: same pod directory name elsewhere, without the process: never chosen.
  cgroupDirWith(`other/${slice}/cri-containerd-${ID}.scope`, []);
  fakeProcess(200, 1, `0::/../../kubepods.slice/kubepods-besteffort.slice/${slice}/cri-containerd-${ID}.scope`);
  // The mount root as a private namespace reports it: not the host's root.
  const [c] = resolveContainers(UID, ref, { v2: { mountPoint: cg, root: '/kubepods.slice/cryopod-agent.scope' } }, proc);
  expect(c.freezer).toEqual({ kind: 'v2', path: dir });
  expect(c.podFreezer.path).toBe(path.dirname(dir));
});

test('a directory that does not list the process is refused: no cgroup found is a clear error', () => {
  cgroupDirWith(`kubepods/besteffort/pod${UID}/${ID}`, [999]);
  fakeProcess(300, 1, `0::/kubepods/besteffort/pod${UID}/${ID}`);
  expect(() => resolveContainers(UID, ref, { v2: { mountPoint: cg, root: '/' } }, proc)).toThrow(/was not found below .* host's cgroup tree/);
});

test('findDirsNamed: every match, shallowest first, not below a match, within the depth limit', () => {
  cgroupDirWith('a/x/x', []);
  cgroupDirWith('b/c/x', []);
  cgroupDirWith('1/2/3/4/5/6/7/x', []);
  expect(findDirsNamed(cg, 'x')).toEqual([path.join(cg, 'a', 'x'), path.join(cg, 'b', 'c', 'x')]);
  expect(findDirsNamed(cg, 'nope')).toEqual([]);
});
