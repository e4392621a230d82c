/**
 * The parasite's control channel in a container's namespaces: victims in network, mount and PID
 * namespaces of their own are dumped from the host's with the parasite (not the process_vm_readv
 * path, which the dump reports per task), and restored. The channel is a socketpair the task makes
 * itself and whose far end the dumper takes by pidfd_getfd: nothing to find by name, so neither a
 * network namespace nor a local user racing for an abstract address can come between them.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { dumpProcess, restoreProcess } from '../../../checkpoint';
import { buildVictims, cleanup, makeTempDir, readProgress, requestCheck, trackPid, victimPath, waitForProgress, waitGone } from '../harness';
import { namespaceOf, startInNamespace } from '../namespaces';

const TREE_BIN = path.join(__dirname, 'bin');
const OWN_NAMESPACES = ['--net', '--mount'];

jest.setTimeout(120_000);

beforeAll(() => {
  buildVictims();
  execFileSync('make', ['-s', '-C', __dirname], { stdio: ['ignore', 'inherit', 'inherit'] });
});
afterEach(cleanup);

function expectOwnNamespaces(pid: number): void {
  for (const kind of ['net', 'mnt', 'pid']) expect(namespaceOf(pid, kind)).not.toBe(namespaceOf(process.pid, kind));
}

/** The parasite fds and memfd the dump put in the task, if any were left behind. */
function parasiteTraces(pid: number): string[] {
  const fds = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  return [...fds.filter((t) => t.startsWith('socket:') || t.includes('cryopod-parasite')), ...maps.filter((l) => l.includes('cryopod-parasite'))];
}

test('a sleeper in its own network, mount and PID namespaces: a short-freeze dump and a plain one by the parasite, restored', async () => {
  const v = await startInNamespace(victimPath('sleeper'), [], OWN_NAMESPACES);
  expectOwnNamespaces(v.pid);
  await waitForProgress(v.workdir, 0, 'the sleeper', 1);

  // Leave running with a short freeze: the snapshot child serves the pages on the second socketpair.
  const first = await dumpProcess({ pid: v.pid, dir: makeTempDir('netns-live'), leaveRunning: true });
  expect(first.pagesMethods).toEqual(['parasite']);
  expect(first.snapshotPrivateBytes).toBeDefined();
  expect(parasiteTraces(v.pid)).toEqual([]);
  await waitForProgress(v.workdir, readProgress(v.workdir) ?? 0, 'the sleeper after a dump that left it running', 1);

  const images = makeTempDir('netns-img');
  const s = await dumpProcess({ pid: v.pid, dir: images });
  expect(s.pagesMethods).toEqual(['parasite']);
  expect(s.pages).toBeGreaterThan(0);
  await waitGone(v.pid, 'the dumped sleeper');

  const r = await restoreProcess({ dir: images });
  trackPid(r.pid);
  await waitForProgress(v.workdir, readProgress(v.workdir) ?? 0, 'the restored sleeper', 2);
  expect(await requestCheck(v.workdir)).toBe('PASS');
});

test('a pipe chain in its own network, mount and PID namespaces: every task dumped by the parasite, restored', async () => {
  const v = await startInNamespace(path.join(TREE_BIN, 'tree-pipe'), [], OWN_NAMESPACES);
  expect(v.ready).toBe('1 2 3');
  expectOwnNamespaces(v.pid);
  const images = makeTempDir('netns-tree-img');
  const s = await dumpProcess({ pid: v.pid, dir: images });
  expect(s.tasks).toBe(3);
  expect(s.pagesMethods).toEqual(['parasite', 'parasite', 'parasite']);
  await waitGone(v.pid, 'the dumped tree');

  const r = await restoreProcess({ dir: images });
  trackPid(r.pid);
  expect(await requestCheck(v.workdir)).toBe('PASS');
});
