/**
 * PostgreSQL from Debian, started as its users start it (initdb, then postgres as the postgres user in
 * the foreground, as a container runs it) with stdout and stderr on a pipe read by a process outside its
 * tree. Its tree is the postmaster and its children (checkpointer, background writer, WAL writer,
 * autovacuum launcher, logical replication launcher); they share a SysV segment, the anonymous
 * MAP_SHARED main shared memory and a POSIX shm segment (dynamic shared memory, `posix` by default),
 * the postmaster-death pipe and their log pipe (one open file in every process). `cryopod dump --check`
 * says so per object; after dump, kill and restore (output on a new pipe) a table created before the
 * checkpoint is queried over the unix socket and over TCP. Under --leave-running a TCP client is answered
 * during and after the dump, and the checkpoint restores once the original is killed.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { dumpProcess, FdReport, restoreProcess } from '../../checkpoint';
import { freePorts } from '../../testenv/ports';
import { cliCheck } from './cli-check';
import { FifoReader } from './files/harness';
import { cleanup, makeTempDir, readFileOrUndefined, waitFor } from './harness';
import { startBehindPipe, stateOf, trackTree, treeOf, uidOf, waitReaped } from './real-servers';

jest.setTimeout(180_000);

const PG_BIN = path.join('/usr/lib/postgresql', fs.readdirSync('/usr/lib/postgresql').sort().pop()!, 'bin');
let extraCleanup: Array<() => void> = [];
afterEach(async () => {
  await cleanup();
  for (const c of extraCleanup.splice(0)) c();
});

const dsmSegments = (): string[] => fs.readdirSync('/dev/shm').filter((f) => f.startsWith('PostgreSQL.')).map((f) => path.join('/dev/shm', f));

function psql(sockDir: string, port: number, sql: string, host = sockDir): string {
  return execFileSync(path.join(PG_BIN, 'psql'), ['-h', host, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-XAtq', '-c', sql], {
    encoding: 'utf8',
    timeout: 20_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

const AUXILIARY = /^postgres: (checkpointer|background writer|walwriter|autovacuum launcher|logical replication launcher)/;

/** The postmaster and its auxiliary processes, once no other child (a client's backend) is left. */
async function quiet(postmaster: number): Promise<number[]> {
  return waitFor(
    () => {
      const tree = treeOf(postmaster);
      const aux = tree.slice(1).filter((p) => stateOf(p) !== 'Z' && AUXILIARY.test(readFileOrUndefined(`/proc/${p}/cmdline`) ?? ''));
      return aux.length === 5 && tree.length === 6 ? tree : undefined;
    },
    30_000,
    'the postmaster with its five auxiliary processes only',
  );
}

interface Postgres {
  work: string;
  port: number;
  pg: number;
  postmaster: number;
  /** The log pipe's reader: what the postmaster wrote before the dump. */
  before: string;
}

/** initdb, then postgres in the foreground as the postgres user behind a log pipe, with a table created. */
async function startPostgres(): Promise<Postgres> {
  const work = makeTempDir('postgres');
  fs.chmodSync(work, 0o755);
  const data = path.join(work, 'data');
  const pg = uidOf('postgres');
  fs.chownSync(work, pg, pg);
  execFileSync('setpriv', ['--reuid=postgres', '--regid=postgres', '--clear-groups', '--', path.join(PG_BIN, 'initdb'), '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], {
    stdio: 'ignore',
    cwd: work,
  });
  const [port] = await freePorts(1);
  const before = path.join(work, 'before.log');
  // Its POSIX shm segments (dynamic shared memory: the control segment, and those its statistics grow
  // into) outlive a killed postmaster: the new ones are removed after the test.
  const dsmBefore = new Set(dsmSegments());
  await startBehindPipe([path.join(PG_BIN, 'postgres'), '-D', data, '-k', work, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'], before, { user: 'postgres', cwd: work });
  const pidFile = path.join(data, 'postmaster.pid');
  const pidLines = (): string[] => (readFileOrUndefined(pidFile) ?? '').split('\n');
  // Tracked as soon as it has a PID, so that cleanup() kills it whatever fails next; then the leftovers
  // of a killed postmaster: its SysV segment (postmaster.pid line 7: key and id) and its POSIX shm.
  const postmaster = await waitFor(() => Number(pidLines()[0]) || undefined, 30_000, 'postmaster.pid');
  trackTree(postmaster);
  let shmid: string | undefined;
  extraCleanup.push(() => {
    if (shmid) {
      try {
        execFileSync('ipcrm', ['-m', shmid], { stdio: 'ignore' });
      } catch {
        // removed by a clean shutdown
      }
    }
    for (const f of dsmSegments()) if (!dsmBefore.has(f)) fs.rmSync(f, { force: true });
  });
  await waitFor(() => pidLines()[7]?.trim() === 'ready' || undefined, 30_000, 'postmaster.pid to say ready');
  shmid = pidLines()[6]?.trim().split(/\s+/)[1];
  const dsm = fs.readFileSync(`/proc/${postmaster}/maps`, 'utf8').match(/\/dev\/shm\/PostgreSQL\.\d+/)?.[0];
  expect(dsm).toBeDefined();

  psql(work, port, 'CREATE TABLE frozen (id int, word text); INSERT INTO frozen VALUES (1, $$before$$), (2, $$the checkpoint$$);');
  expect(psql(work, port, 'SELECT count(*) FROM frozen')).toBe('2');
  return { work, port, pg, postmaster, before };
}

test('PostgreSQL (postmaster and children, SysV + shared anonymous + POSIX shm, unix socket) answers a query on its table after dump, kill and restore', async () => {
  const { work, port, pg, postmaster, before } = await startPostgres();
  const tree = await quiet(postmaster);
  trackTree(postmaster);
  const maps = fs.readFileSync(`/proc/${postmaster}/maps`, 'utf8');
  expect(maps).toMatch(/\/SYSV[0-9a-f]+ \(deleted\)/);
  expect(maps).toMatch(/rw-s .* \/dev\/zero \(deleted\)/);

  // The preflight: every object saved or external, the shared ones named once per holder.
  const table = await cliCheck(postmaster, false);
  expect(table.code).toBe(0);
  expect(table.text).toMatch(new RegExp(`^${postmaster}\\s+\\d+\\s+socket:\\[\\d+\\]\\s+unix\\s+saved\\s+re-created`, 'm'));
  expect(table.text).toMatch(/\nevery object can be saved\s*$/);
  const reports = JSON.parse((await cliCheck(postmaster, true)).text) as FdReport[];
  expect(reports.filter((r) => r.verdict === 'refused')).toEqual([]);
  expect(new Set(reports.map((r) => r.pid))).toEqual(new Set(tree));
  const listener = reports.find((r) => r.pid === postmaster && r.kind === 'unix');
  expect(listener?.verdict).toBe('saved');
  expect(reports.find((r) => r.pid === postmaster && r.kind === 'socket')?.verdict).toBe('saved');
  const stdout = reports.filter((r) => r.fd === 1);
  expect(stdout.map((r) => r.verdict)).toEqual(tree.map(() => 'external'));
  for (const r of stdout.slice(1)) expect(r.note).toContain(`one open file with pid ${postmaster} fd 1`);
  const child = reports.filter((r) => r.pid !== postmaster);
  expect(child.map((r) => r.kind)).toEqual(expect.arrayContaining(['signalfd', 'epoll', 'pipe']));
  // The postmaster-death pipe: one read end, inherited by every child.
  const deathPipe = reports.find((r) => r.pid === postmaster && r.kind === 'pipe' && r.verdict === 'saved' && child.some((c) => c.object === r.object))!;
  for (const c of child.filter((r) => r.object === deathPipe.object)) expect(c.note).toContain(`one open file with pid ${postmaster} fd ${deathPipe.fd}`);

  const images = makeTempDir('img-postgres');
  const s = await dumpProcess({ pid: postmaster, dir: images });
  expect(s.tasks).toBe(tree.length);
  await waitReaped(tree, 'the dumped postgres processes');
  await waitFor(() => (readFileOrUndefined(before) ?? '').includes('database system is ready') || undefined, 10_000, 'the old log pipe read');

  const out = new FifoReader(path.join(work, 'after'));
  fs.chownSync(out.path, pg, pg); // opened by the restored postmaster, with its own rights
  try {
    const r = await restoreProcess({ dir: images, inheritFds: [{ fd: 1, path: out.path }, { fd: 2, path: out.path }] });
    expect(r.pid).toBe(postmaster);
    trackTree(postmaster);
    expect(treeOf(postmaster).sort()).toEqual([...tree].sort());
    expect(psql(work, port, 'SELECT string_agg(word, $$ $$ ORDER BY id) FROM frozen')).toBe('before the checkpoint');
    expect(psql(work, port, 'SELECT count(*) FROM frozen', '127.0.0.1')).toBe('2');
    // Writes after the restore go through the restored shared buffers and WAL writer.
    psql(work, port, 'INSERT INTO frozen VALUES (3, $$after$$); CHECKPOINT;');
    expect(psql(work, port, 'SELECT max(id) FROM frozen', '127.0.0.1')).toBe('3');
    // Its stderr is the new pipe: an error is logged there.
    expect(() => psql(work, port, 'SELECT * FROM no_such_table')).toThrow();
    await waitFor(() => (out.read().includes('no_such_table') ? true : undefined), 10_000, 'the error on the new stderr pipe');
    trackTree(postmaster);
  } finally {
    out.close();
  }
});

test('PostgreSQL under --leave-running: it serves during and after the dump; killed afterwards, its checkpoint restores with the table as of the dump', async () => {
  const { work, port, pg, postmaster } = await startPostgres();
  const tree = await quiet(postmaster);
  trackTree(postmaster);
  const images = makeTempDir('img-postgres-lr');
  // A client over TCP that asks again and again while the dump runs: every query must be answered.
  let settled = false;
  const dumping = dumpProcess({ pid: postmaster, dir: images, leaveRunning: true }).finally(() => (settled = true));
  let answered = 0;
  while (!settled) {
    expect(psql(work, port, 'SELECT count(*) FROM frozen', '127.0.0.1')).toBe('2');
    answered++;
    await new Promise((r) => setTimeout(r, 5));
  }
  const s = await dumping;
  expect(answered).toBeGreaterThan(0);
  expect(s.tasks).toBeGreaterThanOrEqual(tree.length);
  // The original serves on, and changes what it holds after the dump.
  psql(work, port, 'INSERT INTO frozen VALUES (3, $$after the dump$$);');
  expect(psql(work, port, 'SELECT count(*) FROM frozen')).toBe('3');

  // Killed the way a node dies (no shutdown): the checkpoint comes back as the dump saw it.
  const now = treeOf(postmaster);
  for (const p of now) process.kill(p, 'SIGKILL');
  await waitReaped(now, 'the original postgres processes');
  const out = new FifoReader(path.join(work, 'after-lr'));
  fs.chownSync(out.path, pg, pg);
  try {
    const r = await restoreProcess({ dir: images, inheritFds: [{ fd: 1, path: out.path }, { fd: 2, path: out.path }] });
    expect(r.pid).toBe(postmaster);
    trackTree(postmaster);
    // Rows written after the dump went to the WAL and data files of the same directory, which the
    // restored server finds on disk; what it holds in memory is the dump's: it answers, and writes.
    expect(psql(work, port, 'SELECT string_agg(word, $$ $$ ORDER BY id) FROM frozen WHERE id < 3')).toBe('before the checkpoint');
    psql(work, port, 'INSERT INTO frozen VALUES (4, $$restored$$); CHECKPOINT;');
    expect(psql(work, port, 'SELECT count(*) FROM frozen WHERE id = 4', '127.0.0.1')).toBe('1');
    trackTree(postmaster);
  } finally {
    out.close();
  }
});
