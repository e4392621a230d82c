/**
 * Process state besides memory and files (issue 10, item 3): the proc-state victim sets rlimits, an
 * interval timer and a POSIX timer, pending signals (process-wide and its thread's own), scheduling,
 * umask, personality, parent-death signal, child subreaper, no_new_privs, two seccomp filters,
 * oom_score_adj and capabilities; it is dumped, killed and restored, and then checks every part itself
 * (timers still ticking, signals delivered once it unblocks them, the newest filter still winning).
 * The images carry them in CRIU's places, which crit decodes; a restore that would need more than the
 * stub may have fails naming what.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { dumpProcess, restoreProcess } from '../../checkpoint';
import { readCheckpoint } from '../../images';
import { restoreTask } from '../lib';
import { cleanup, isAlive, makeTempDir, requestCheck, startVictim, trackPid, waitGone } from './harness';

jest.setTimeout(60_000);
afterEach(cleanup);

const RLIMIT_NOFILE = 7;
const SCHED_BATCH = 3;

function crit(file: string): string {
  return execFileSync('/usr/bin/crit', ['decode', '-i', file, '--pretty'], { encoding: 'utf8' });
}

test('rlimits, timers, pending signals, scheduling, seccomp, capabilities and the rest are in force after restore', async () => {
  const v = await startVictim('proc-state');
  const images = makeTempDir('img-proc-state');
  await dumpProcess({ pid: v.pid, dir: images });
  await waitGone(v.pid, 'the dumped proc-state victim');

  const { task } = await readCheckpoint(images);
  const ps = task.processState;
  expect(ps).toBeDefined();
  expect(ps!.rlimits[RLIMIT_NOFILE]).toEqual({ cur: 200n, max: 300n });
  expect(ps!.itimers[0].intervalUs).toBe(20_000);
  expect(ps!.posixTimers).toEqual([expect.objectContaining({ signo: 35, sigval: 0x5eedn, intervalNs: 30_000_000 })]);
  // SIGUSR1 and SIGRTMIN+2 (and maybe a SIGALRM or timer signal that came while it was stopped).
  expect(ps!.sharedSignals.map((s) => s.readInt32LE(0))).toEqual(expect.arrayContaining([10, 36]));
  expect(task.threadState!.pendingSignals.map((s) => s.readInt32LE(0))).toEqual([12]);
  expect(task.threadState).toMatchObject({ nice: 5, policy: SCHED_BATCH, pdeathSignal: 23 });
  expect(ps!.seccomp).toHaveLength(2);
  expect(ps).toMatchObject({ noNewPrivs: true, childSubreaper: true, oomScoreAdj: 500 });
  // CRIU's own decoder reads them where CRIU keeps them.
  const core = crit(path.join(images, `core-${task.pid}.img`));
  for (const field of ['"rlimits"', '"timers"', '"signals_s"', '"signals_p"', '"sched_policy"', '"seccomp_filter"', '"cap_prm"']) expect(core).toContain(field);
  expect(crit(path.join(images, 'seccomp.img'))).toContain('"seccomp_filters"');

  const r = await restoreProcess({ dir: images });
  trackPid(r.pid);
  expect(await requestCheck(v.workdir)).toBe('PASS');
});

test('a restore that would raise a hard limit above the stub\'s fails naming it, and leaves no process', async () => {
  const v = await startVictim('proc-state');
  const images = makeTempDir('img-proc-state-limit');
  await dumpProcess({ pid: v.pid, dir: images });
  await waitGone(v.pid, 'the dumped proc-state victim');
  const { task, pagesPath } = await readCheckpoint(images);
  // The stub inherits our limits: one above our own hard limit is beyond its rights.
  const ours = /^Max open files\s+\d+\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  const hard = BigInt(ours![1]);
  task.processState!.rlimits[RLIMIT_NOFILE] = { cur: 100n, max: hard + 1n };
  const before = new Set(fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)));
  await expect(restoreTask({ task, pagesPath })).rejects.toMatchObject({ code: 'EPERM', message: expect.stringMatching(/RLIMIT_NOFILE: the saved hard limit/) });
  const stubs = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && !before.has(p) && isAlive(Number(p)) && /cryopod-stub/.test(readExe(Number(p))));
  expect(stubs).toEqual([]);
});

function readExe(pid: number): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}
