/**
 * The agent's kernel-facing parts on this machine, for real: a process in a cgroup named like a pod's is
 * found from /proc, its cgroup freezes and thaws (v1 freezer and v2), and the freeze journal thaws what a
 * dead agent left frozen.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { readCgroupMounts } from './cgroup-mounts';
import { FreezeJournal } from './freeze-journal';
import { freeze, freezerState, thaw, withFrozen } from './freezer';
import { recheckMembership, resolveContainers } from './resolve';
import { FakeContainer, startFakeContainer } from './test/test-cgroup-pod';
import { holdsFor, waitFor } from '../testenv/wait';


describe.each(['v1', 'v2'] as const)('cgroup %s', (kind) => {
  let ctr: FakeContainer | undefined;
  const uid = crypto.randomUUID();
  afterEach(async () => {
    await ctr?.destroy();
    ctr = undefined;
  });

  test('resolves the pod container to its host PID and freezes/thaws it', async () => {
    ctr = await startFakeContainer(kind, uid);
    const mounts = readCgroupMounts();
    const [c] = resolveContainers(uid, [{ name: 'app', containerID: ctr.containerID }], mounts);
    expect(c.mainPid).toBe(ctr.pid);
    expect(c.pids).toEqual([ctr.pid]);
    expect(c.freezer).toEqual(ctr.freezer);
    expect(c.podFreezer).toEqual(ctr.podFreezer);
    expect(() => recheckMembership(c, uid)).not.toThrow();
    // Another pod's UID finds nothing.
    expect(() => resolveContainers(crypto.randomUUID(), [{ name: 'app', containerID: ctr!.containerID }], mounts)).toThrow(/no process/);

    await freeze(c.podFreezer);
    expect(freezerState(c.freezer)).toBe('frozen');
    const a = ctr.state().counter;
    // Frozen: no progress. The counter writes its state every 20 ms, so 200 ms is ten ticks it missed.
    await holdsFor('the counter standing still', () => ctr!.state().counter === a, 200);
    await thaw(c.podFreezer);
    expect(freezerState(c.freezer)).toBe('thawed');
    await waitFor('the counter to move again', () => ctr!.state().counter > a, 5000);
    expect(ctr.state().counter).toBeGreaterThan(a);

    // The guard thaws when the body throws.
    await expect(withFrozen(c.freezer, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(freezerState(c.freezer)).toBe('thawed');
  });

  test('a process moved out of the container cgroup is refused before the dump', async () => {
    ctr = await startFakeContainer(kind, uid);
    const mounts = readCgroupMounts();
    const [c] = resolveContainers(uid, [{ name: 'app', containerID: ctr.containerID }], mounts);
    const root = kind === 'v1' ? mounts.freezerV1!.mountPoint : mounts.v2!.mountPoint;
    fs.writeFileSync(path.join(root, 'cgroup.procs'), String(ctr.pid));
    expect(() => recheckMembership(c, uid)).toThrow(/left cgroup/);
  });

  test('the freeze journal thaws a cgroup an earlier agent left frozen', async () => {
    ctr = await startFakeContainer(kind, uid);
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-journal-'));
    const mounts = readCgroupMounts();
    new FreezeJournal(state, mounts).record(ctr.freezer);
    await freeze(ctr.freezer);
    // A bogus entry outside any cgroup hierarchy is never written to.
    fs.writeFileSync(path.join(state, 'freezes', 'bogus.json'), JSON.stringify({ kind: 'v1', path: '/etc' }));
    const thawed = await new FreezeJournal(state, mounts).recover(() => undefined);
    expect(thawed).toEqual([ctr.freezer]);
    expect(freezerState(ctr.freezer)).toBe('thawed');
    expect(fs.readdirSync(path.join(state, 'freezes'))).toEqual([]);
    fs.rmSync(state, { recursive: true, force: true });
  });
});
