/**
 * The PID-namespace helper killed by the tenant. While a restore places IDs in a container's PID
 * namespace, a helper of ours lives there (native/src/core/pid_ns_helper.cc); a process of the tenant
 * with CAP_KILL in that namespace can SIGKILL it (nothing can stop a SIGKILL from there). What that
 * costs must be nothing but that restore: it fails with EIO naming the helper, the half-built stub dies
 * with it (EXITKILL), and nothing of ours is left in the namespace or anywhere, stopped or traced.
 *
 * The image: a multi-threaded victim that was the init of a PID namespace of its own (its thread's ID, 2,
 * must be placed by the helper). The stub: the init of a fresh PID namespace, as a container's is. The
 * restorer (a child `node`, the checkpoint library's restoreVerified) is held at its seize phase; the
 * helper is found in the stub's namespace and killed from inside it (`nsenter --pid`, as root there).
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { dumpProcess } from '../../checkpoint';
import { phaseHook } from '../../testenv/phase-hook';
import { STUB_PATH } from '../lib';
import { hostPidOf, namespaceOf, nsPids, startInNamespace } from './namespaces';
import { buildVictims, cleanup, isAlive, makeTempDir, trackPid, victimPath, waitFor } from './procs';

jest.setTimeout(60_000);
beforeAll(() => buildVictims());
afterEach(cleanup);

const DIST_CHECKPOINT = path.join(__dirname, '..', '..', 'dist', 'checkpoint', 'index.js');

/** Every process in the PID namespace `ns` (as /proc/PID/ns/pid reads). */
function inNamespace(ns: string): number[] {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => {
    try {
      return namespaceOf(p) === ns;
    } catch {
      return false;
    }
  });
}

test('a tenant that kills the helper mid-restore fails that restore cleanly (EIO naming the helper): the stub dies, nothing is left', async () => {
  expect(fs.existsSync(DIST_CHECKPOINT)).toBe(true);
  const v = await startInNamespace(victimPath('multithread'), []);
  expect(fs.readdirSync(`/proc/${v.pid}/task`)).toHaveLength(2);
  const dir = makeTempDir('helper-kill-img');
  await dumpProcess({ pid: v.pid, dir, leaveRunning: false });
  await waitFor(() => (isAlive(v.pid) ? undefined : true), 10_000, 'the dump to end the victim');

  const marker = makeTempDir('helper-kill-stub');
  execFileSync('setsid', ['-f', 'unshare', '--pid', '--fork', STUB_PATH, marker], { stdio: 'ignore', cwd: '/' });
  const stub = await waitFor(() => hostPidOf(marker, 1), 10_000, 'the stub');
  trackPid(stub);
  const ns = namespaceOf(stub);

  const script = `
    const { readVerified, restoreVerified } = require(${JSON.stringify(DIST_CHECKPOINT)});
    readVerified(process.argv[1]).then((cp) => restoreVerified(cp, { stubPid: Number(process.argv[2]), phaseFd: 3 }))
      .then((pid) => { console.log('restored ' + pid); process.exit(0); },
            (err) => { console.error((err.code || '') + ': ' + err.message); process.exit(1); });`;
  const restorer = spawn(process.execPath, ['-e', script, dir, String(stub)], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  trackPid(restorer.pid!);
  let out = '';
  restorer.stdout!.on('data', (d) => (out += d));
  restorer.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => restorer.on('exit', (code) => resolve(code)));
  let killed: { host: number; inNs: number } | undefined;
  const hook = phaseHook(restorer, (name) => {
    if (name !== 'seize' || killed) return hook.step();
    // The helper: the one process of the stub's namespace that is not the stub.
    const others = inNamespace(ns).filter((p) => p !== stub);
    expect(others).toHaveLength(1);
    const host = others[0];
    const inNs = nsPids(host)[1];
    execFileSync('nsenter', ['--target', String(stub), '--pid', '--', 'kill', '-KILL', String(inNs)], { stdio: 'ignore' });
    killed = { host, inNs };
    waitFor(() => (isAlive(host) ? undefined : true), 5000, 'the helper to die').then(hook.step, hook.step);
  });

  const code = await exited;
  expect(killed).toBeDefined();
  expect({ code, out: out.trim() }).toEqual({
    code: 1,
    out: expect.stringMatching(/^EIO: the PID namespace helper \(pid \d+\) is gone, killed from inside the restored PID namespace/),
  });
  // The stub died with its restorer's failure; nothing of ours is left in the namespace (which, its init
  // gone, is empty), nor stopped or traced anywhere.
  await waitFor(() => (isAlive(stub) ? undefined : true), 10_000, 'the half-built stub to be killed');
  await waitFor(() => (inNamespace(ns).length === 0 ? true : undefined), 10_000, `the namespace to empty (left: ${inNamespace(ns).join(', ')})`);
  const tracedByRestorer = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).filter((p) => {
    try {
      return new RegExp(`^TracerPid:\\s+${restorer.pid}$`, 'm').test(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
    } catch {
      return false;
    }
  });
  expect(tracedByRestorer).toEqual([]);
});
