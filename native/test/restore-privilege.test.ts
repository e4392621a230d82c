/**
 * An image cannot raise the privilege of what it restores: in the node agent's path (restoreVerified into
 * a stub someone else started, as a restore pod's container is), the restored process has exactly the
 * stub's credentials and never a capability the stub lacks, whatever the image claims.
 *
 * The stub runs as uid/gid 65534 with no capability in any set (bounding included), in a PID namespace of
 * its own, as a container's would. Two images of a root process (a real dump of the sleeper victim):
 *   - as dumped: it claims uid 0 and every capability. The restore fails naming the capabilities, and
 *     no process is left (the stub is killed);
 *   - re-written by someone with the image directory (manifest re-hashed): it claims uid 0, no
 *     capability and a PID namespace of its own. The restore succeeds, and the process runs as 65534
 *     with no capability, in the stub's namespaces (all seven the same as before); into a stub under a
 *     seccomp filter (its runtime's), the image's having none leaves that filter on.
 * Local mode (restoreProcess by root): the saved credentials only as far as the image's writers had them
 * (checkpoint/local-creds.ts).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readVerified, restoreProcess, restoreVerified } from '../../checkpoint';
import { readCheckpoint } from '../../images';
import { encodeTree } from '../../images/encode';
import { recomputeManifest } from '../../images/test/test-dir';
import { STUB_PATH } from '../lib';
import { checkpoint, checkResult, cleanup, expectKilledByDump, isAlive, startVictim, trackPid, victimPath, waitFor, waitForProgress } from './harness';
import { hostPidOf } from './namespaces';

jest.setTimeout(60_000);
afterEach(cleanup);

const NOBODY = 65534;

/**
 * A stub as a restore pod's container runs it: init of a PID namespace, uid/gid 65534, no capabilities;
 * with `seccomp`, under a filter of its runtime's too (victims/seccomp-exec.c).
 */
async function unprivilegedStub(marker: string, opts: { seccomp?: boolean } = {}): Promise<number> {
  const launcher = opts.seccomp ? [victimPath('seccomp-exec')] : [];
  execFileSync('setsid', ['-f', 'unshare', '--pid', '--fork', 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', ...launcher, STUB_PATH, marker], { stdio: 'ignore', cwd: '/' });
  const stub = await waitFor(() => hostPidOf(marker, 1), 10_000, 'the unprivileged stub');
  trackPid(stub);
  await waitFor(() => (/^Uid:\s+65534\s/m.test(fs.readFileSync(`/proc/${stub}/status`, 'utf8')) && fs.readlinkSync(`/proc/${stub}/exe`).endsWith('cryopod-stub') ? true : undefined), 10_000, 'the stub to run as 65534');
  return stub;
}

function status(pid: number): string {
  return fs.readFileSync(`/proc/${pid}/status`, 'utf8');
}

async function dumpedSleeper(): Promise<{ dir: string; workdir: string }> {
  const v = await startVictim('sleeper');
  await waitForProgress(v.workdir, 0, 'the sleeper', 1);
  // Root's capabilities (CAP_SYS_ADMIN among them: bit 21), which its image then claims.
  const eff = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)$/m.exec(status(v.pid))![1]}`);
  expect((eff >> 21n) & 1n).toBe(1n);
  const cp = await checkpoint(v);
  await expectKilledByDump(v);
  return { dir: cp.dir, workdir: v.workdir };
}

test('an image claiming uid 0 and every capability: refused by an unprivileged stub, naming them; nothing left', async () => {
  const { dir, workdir } = await dumpedSleeper();
  const stub = await unprivilegedStub(`${workdir}-stub`);
  const cp = await readVerified(dir);
  expect(cp.task.creds.uid).toBe(0);
  const err = await restoreVerified(cp, { stubPid: stub }).then(() => undefined, (e: Error & { code?: string }) => e);
  expect(err).toBeDefined();
  expect(err?.message).toMatch(/^the task had capabilities the restore stub lacks \(numbers 0,1,2,.*21,.*\): never more than the stub has$/);
  await waitFor(() => (isAlive(stub) ? undefined : true), 10_000, 'the stub to be killed');
});

test.each([
  ['', false],
  [', no seccomp filter, into a stub under its runtime\'s filter: the filter stays', true],
])('an image re-written to claim uid 0 without capabilities%s: restored with the stub\'s uid 65534 and no capability', async (_what, seccomp) => {
  const { dir, workdir } = await dumpedSleeper();
  const { tree } = await readCheckpoint(dir);
  const task = tree.tasks[0];
  task.creds = { uid: 0, euid: 0, suid: 0, fsuid: 0, gid: 0, egid: 0, sgid: 0, fsgid: 0 };
  task.ownPidNamespace = true; // and IDs of a PID namespace of its own
  if (task.processState) {
    task.processState.caps = { inheritable: 0n, permitted: 0n, effective: 0n, bounding: 0n, ambient: 0n, securebits: 0 };
    expect(task.processState.seccomp).toEqual([]); // the sleeper had none: the image claims none
  }
  for (const img of encodeTree(tree)) if (img.name.startsWith('core-')) fs.writeFileSync(path.join(dir, img.name), img.data);
  await recomputeManifest(dir);
  fs.chmodSync(workdir, 0o777); // the sleeper reports there; as 65534 now

  const stub = await unprivilegedStub(`${workdir}-stub`, { seccomp });
  if (seccomp) expect(status(stub)).toMatch(/^Seccomp_filters:\s+1$/m);
  const namespaces = (pid: number): string[] => ['pid', 'mnt', 'net', 'ipc', 'uts', 'user', 'cgroup'].map((k) => fs.readlinkSync(`/proc/${pid}/ns/${k}`));
  const before = namespaces(stub);
  expect(before[0]).not.toBe(fs.readlinkSync('/proc/self/ns/pid'));
  const cp = await readVerified(dir);
  expect(cp.task.creds).toMatchObject({ uid: 0, euid: 0, gid: 0 });
  expect(await restoreVerified(cp, { stubPid: stub })).toBe(stub);
  const s = status(stub);
  expect(namespaces(stub)).toEqual(before); // the stub's namespaces, whatever the image says of its own
  expect(s).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
  expect(s).toMatch(/^Gid:\s+65534\s+65534\s+65534\s+65534$/m);
  for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(s).toMatch(new RegExp(`^${set}:\\s+0000000000000000$`, 'm'));
  // The runtime's no_new_privs and filter stay: the image, which has neither, takes nothing away.
  if (seccomp) expect(s).toMatch(/^NoNewPrivs:\s+1\nSeccomp:\s+2\nSeccomp_filters:\s+1$/m);
  expect(await checkResult(stub, workdir)).toBe('PASS');
});

describe('local mode: a restore by root never gives more than the image\'s writers had', () => {
  it('a root process\'s checkpoint handed to uid 65534 (its files now 65534\'s) is refused, EPERM naming why; --trust-saved-credentials restores it as saved', async () => {
    const { dir, workdir } = await dumpedSleeper();
    for (const p of [dir, ...fs.readdirSync(dir).map((n) => path.join(dir, n))]) fs.chownSync(p, NOBODY, NOBODY);
    const before = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).length;
    const err = await restoreProcess({ dir }).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err).toMatchObject({ code: 'EPERM' });
    expect(err?.message).toBe(`${dir} is uid 65534's (gid 65534), so it restores with at most those credentials, but the checkpoint claims uid 0 gid 0: refused (pass --trust-saved-credentials to restore with them anyway)`);
    expect(fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).length).toBeLessThanOrEqual(before + 2);

    const r = await restoreProcess({ dir, trustSavedCredentials: true });
    trackPid(r.pid);
    expect(status(r.pid)).toMatch(/^Uid:\s+0\s+0\s+0\s+0$/m);
    expect(await checkResult(r.pid, workdir)).toBe('PASS');
  });

  it('a directory others may write: refused whatever it claims, naming it', async () => {
    const { dir } = await dumpedSleeper();
    fs.chmodSync(dir, 0o777);
    await expect(restoreProcess({ dir })).rejects.toMatchObject({ code: 'EPERM', message: expect.stringContaining(`${dir} is writable by its group or others (mode 777): anyone could have written this checkpoint`) });
  });

  it('an image of uid 65534 in 65534\'s directory: restored as 65534', async () => {
    const { dir, workdir } = await dumpedSleeper();
    const { tree } = await readCheckpoint(dir);
    tree.tasks[0].creds = { uid: NOBODY, euid: NOBODY, suid: NOBODY, fsuid: NOBODY, gid: NOBODY, egid: NOBODY, sgid: NOBODY, fsgid: NOBODY };
    // What a process of 65534 started by root has: no capability, root's bounding set.
    const ps = tree.tasks[0].processState;
    if (ps) ps.caps = { ...ps.caps, inheritable: 0n, permitted: 0n, effective: 0n, ambient: 0n };
    for (const img of encodeTree(tree)) if (img.name.startsWith('core-')) fs.writeFileSync(path.join(dir, img.name), img.data);
    await recomputeManifest(dir);
    for (const p of [dir, ...fs.readdirSync(dir).map((n) => path.join(dir, n))]) fs.chownSync(p, NOBODY, NOBODY);
    fs.chmodSync(workdir, 0o777);
    const r = await restoreProcess({ dir });
    trackPid(r.pid);
    expect(status(r.pid)).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
    expect(status(r.pid)).toMatch(/^CapEff:\s+0000000000000000$/m);
    expect(await checkResult(r.pid, workdir)).toBe('PASS');
  });
});
