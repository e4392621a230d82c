/**
 * External pipes (native/src/core/files/inherit.cc): a victim whose stdout is a pipe to a `cat` outside
 * its tree is dumped (the pipe recorded by identity, no bytes), killed, and restored with fd 1
 * re-attached to what the restorer provides: a path (--inherit-fd 1:PATH), by default the restorer's
 * own stdout, or, morphing a stub someone else started (a restore pod's container), that stub's own
 * stdout. Its output must arrive there after the restore.
 */
import { spawn } from 'child_process';
import * as path from 'path';
import { STUB_PATH, dumpProcess, readVerified, restoreProcess, restoreVerified } from '../../../checkpoint';
import { readCheckpoint } from '../../../images';
import { Victim, cleanup, expectFailure, expectKilledByDump, processesRunning, makeTempDir, readFileOrUndefined, requestCheck, trackPid, waitFor, waitForProgress } from '../harness';
import { FifoReader, startWithStdoutPipe } from './harness';

jest.setTimeout(90_000);
afterEach(cleanup);

const CLI = path.resolve(__dirname, '../../../bin/cryopod.js');

/** The stdout-pipe victim, running a few ticks, dumped (killed) into a fresh image dir. */
async function dumpedPipeVictim(ticks: number): Promise<{ v: Victim & { log: string }; dir: string }> {
  const v = await startWithStdoutPipe('stdout-pipe');
  await waitForProgress(v.workdir, 0, 'the stdout-pipe victim', ticks);
  const dir = makeTempDir('img-stdout-pipe');
  await dumpProcess({ pid: v.pid, dir });
  await expectKilledByDump(v);
  return { v, dir };
}

test('stdout on a pipe read outside the tree: saved as external, re-attached to --inherit-fd 1:PATH', async () => {
  const { v, dir } = await dumpedPipeVictim(3);
  // The old reader saw the ticks written before the dump, and got its EOF.
  const before = await waitFor(() => (readFileOrUndefined(v.log) ?? '').includes('tick 3') ? readFileOrUndefined(v.log) : undefined, 10_000, 'ticks in before.log');
  const { tree } = await readCheckpoint(dir);
  const stdout = tree.tasks[0].files.find((f) => f.fd === 1);
  expect(stdout?.kind).toBe('pipe');
  expect(stdout?.state?.num.external).toBe(1);
  expect(tree.pipes).toEqual([]);

  const fifo = new FifoReader(path.join(v.workdir, 'new-stdout'));
  try {
    const r = await restoreProcess({ dir, inheritFds: [{ fd: 1, path: fifo.path }] });
    trackPid(r.pid);
    const more = await waitFor(() => (/tick (\d+)\n/.test(fifo.read()) ? fifo.read() : undefined), 10_000, 'ticks on the new stdout');
    const first = Number(/tick (\d+)/.exec(more)![1]);
    const last = Number([...before.matchAll(/tick (\d+)/g)].pop()![1]);
    expect(first).toBeGreaterThan(last - 1);  // the count went on from where it was
    expect(await requestCheck(v.workdir)).toBe('PASS');
    expect(await waitFor(() => (fifo.read().includes('after-restore') ? true : undefined), 10_000, 'after-restore')).toBe(true);
  } finally {
    fifo.close();
  }
});

test('by default a saved stdout takes the restorer\'s own: `cryopod restore | cat` gets the output', async () => {
  const { v, dir } = await dumpedPipeVictim(3);
  const after = path.join(v.workdir, 'after.log');
  // The CLI prints the new pid first, then the restored process writes its ticks to the same pipe.
  const errors = path.join(v.workdir, 'restore.err');
  const sh = spawn('setsid', ['-f', 'sh', '-c', `${process.execPath} ${CLI} restore --dir ${dir} 2> ${errors} | cat > ${after}`], { stdio: 'ignore' });
  await new Promise((resolve) => sh.on('exit', resolve));
  // The restore's own stderr goes into the failure message: a restore that failed says why.
  const text = await waitFor(() => (/^\d+\n[^]*tick \d+\n/.test(readFileOrUndefined(after) ?? '') ? readFileOrUndefined(after) : undefined), 30_000, 'the pid and ticks in after.log')
    .catch((e: Error) => { throw new Error(`${e.message}; after.log: ${JSON.stringify(readFileOrUndefined(after) ?? '')}; restore stderr: ${JSON.stringify(readFileOrUndefined(errors) ?? '')}`); });
  trackPid(Number(text.split('\n')[0]));
  expect(await requestCheck(v.workdir)).toBe('PASS');
  expect(await waitFor(() => ((readFileOrUndefined(after) ?? '').includes('after-restore') ? true : undefined), 10_000, 'after-restore in after.log')).toBe(true);
});

test('into a stub someone else started (a restore pod\'s container): the saved stdout takes the stub\'s own', async () => {
  const { v, dir } = await dumpedPipeVictim(3);
  const after = path.join(v.workdir, 'container-stdout.log');
  const before = new Set(processesRunning('cryopod-stub'));
  // The "container": the stub as its command, its stdout a pipe its "runtime" (cat) reads.
  const sh = spawn('setsid', ['-f', 'sh', '-c', `exec ${STUB_PATH} | cat > ${after}`], { stdio: 'ignore', cwd: '/' });
  await new Promise((resolve) => sh.on('exit', resolve));
  const stub = await waitFor(() => processesRunning('cryopod-stub').find((p) => !before.has(p)), 10_000, 'the container stub');
  trackPid(stub);
  expect(await restoreVerified(await readVerified(dir), { stubPid: stub })).toBe(stub);
  await waitFor(() => (/tick \d+\n/.test(readFileOrUndefined(after) ?? '') ? true : undefined), 10_000, 'ticks on the container stdout');
  expect(await requestCheck(v.workdir)).toBe('PASS');
  expect(await waitFor(() => ((readFileOrUndefined(after) ?? '').includes('after-restore') ? true : undefined), 10_000, 'after-restore')).toBe(true);
});

test('--inherit-fd for an fd that holds no external object: EINHERIT naming the fd, nothing started', async () => {
  const { v, dir } = await dumpedPipeVictim(1);
  await expectFailure(restoreProcess({ dir, inheritFds: [{ fd: 5, path: '/dev/null' }] }), 'EINHERIT', [/fd 5/, /no task/]);
  await expectFailure(restoreProcess({ dir, inheritFds: [{ fd: 1, path: '/dev/null' }, { fd: 1, restorerFd: 1 }] }), 'EINHERIT', [/fd 1/, /twice/]);
});
