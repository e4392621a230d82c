/**
 * The native test harness: dump a real victim with Cryopod, check that the dump killed it, restore it as a
 * new process, ask it to verify itself, and clean every process and directory up afterwards.
 *
 *   startVictim ──► checkpoint ──► expectKilledByDump ──► restore ──► checkResult ──► cleanup (afterEach)
 *   (procs.ts)      dumpProcess    SIGKILL, reaped        new pid      check file,     kills every pid
 *                   fresh temp dir                        tracked      result file     it ever saw
 */
import * as fs from 'fs';
import * as path from 'path';
import { dumpProcess, DumpSummary, restoreProcess } from '../../checkpoint';
import { readCheckpoint, summarize } from '../../images';
import type { VmaRow } from '../../images';
import {
  assertRunningUntraced,
  isAlive,
  makeTempDir,
  procPpid,
  procState,
  ProcSnapshot,
  readFileOrUndefined,
  trackPid,
  Victim,
  waitFor,
  waitGone,
} from './procs';

export * from './procs';

export const PAGE_SIZE = 4096;

export interface Checkpoint {
  dir: string;
  pid: number;
  summary: DumpSummary;
}

/** Dumps the victim into a fresh temp dir and checks the summary is coherent. */
/** What a checkpoint holds, read back through the verifying reader: the root task's VMA rows and totals. */
export async function readBack(dir: string): Promise<{ pid: number; comm: string; vmas: VmaRow[]; totalPages: number; totalBytes: number }> {
  const { task } = await readCheckpoint(dir);
  const s = summarize(task);
  return { pid: task.pid, comm: task.comm, vmas: s.rows, totalPages: s.totals.pages, totalBytes: s.totals.bytes };
}

export type DumpMethod = Parameters<typeof dumpProcess>[0]['method'];

export async function checkpoint(v: Victim, opts: { leaveRunning?: boolean; method?: DumpMethod } = {}): Promise<Checkpoint> {
  const dir = makeTempDir(`img-${v.name}`);
  const summary = await dumpProcess({ pid: v.pid, dir, leaveRunning: opts.leaveRunning, method: opts.method });
  expect(summary.pid).toBe(v.pid);
  expect(path.resolve(summary.dir)).toBe(path.resolve(dir));
  expect(summary.pages).toBeGreaterThan(0);
  expect(summary.bytes).toBeGreaterThanOrEqual(summary.pages * PAGE_SIZE);
  expect(summary.vmas).toBeGreaterThan(0);
  expect(summary.frozenSeconds).toBeGreaterThanOrEqual(0);
  expect(summary.totalSeconds).toBeGreaterThanOrEqual(summary.frozenSeconds);
  expect(fs.statSync(path.join(dir, 'pages-1.img')).size).toBe(summary.pages * PAGE_SIZE);
  return { dir, pid: v.pid, summary };
}

/**
 * The dump (without leaveRunning) must SIGKILL the victim: it dies (a zombie of init, with exit signal 9,
 * or already reaped) and /proc/PID disappears once init reaps it.
 */
export async function expectKilledByDump(v: Victim): Promise<void> {
  const end = await waitGone(v.pid, `${v.name} after the dump`);
  if (end.code !== null || end.signal !== null) expect(end).toEqual({ code: null, signal: 9 });
}

export interface Restored {
  pid: number;
  seconds: number;
}

/** Restores a checkpoint; the new process is tracked for cleanup and must be running untraced. */
export async function restore(dir: string): Promise<Restored> {
  const r = await restoreProcess({ dir });
  trackPid(r.pid);
  expect(r.pid).toBeGreaterThan(0);
  expect(r.seconds).toBeGreaterThanOrEqual(0);
  assertRunningUntraced(r.pid, 'the restored process');
  const ppid = procPpid(r.pid);
  expect([process.pid, 1]).toContain(ppid);
  return r;
}

/** How a process that exited looks in /proc (its exit_code stays readable while it is a zombie). */
export function describeDeath(pid: number): string {
  const stat = readFileOrUndefined(`/proc/${pid}/stat`);
  if (stat === undefined) return `pid ${pid} is gone (reaped)`;
  const f = stat.slice(stat.lastIndexOf(')') + 2).trim().split(/\s+/);
  const code = Number(f[49]);
  const how = code & 0x7f ? `killed by signal ${code & 0x7f}${code & 0x80 ? ' (core dumped)' : ''}` : `exited with ${code >> 8}`;
  return `pid ${pid} is in state ${f[0]}, ${how}`;
}

/**
 * Creates <workdir>/check and waits for the verdict of the process `pid`; fails early, with the way it
 * died, when the process dies without one.
 */
export async function checkResult(pid: number, workdir: string, timeoutMs = 30_000): Promise<string> {
  fs.writeFileSync(path.join(workdir, 'check'), '');
  const resultFile = path.join(workdir, 'result');
  let deadSince: number | undefined;
  const result = await waitFor(
    () => {
      const r = readFileOrUndefined(resultFile);
      if (r !== undefined) return r;
      if (!isAlive(pid)) {
        deadSince ??= Date.now();
        if (Date.now() - deadSince > 500) throw new Error(`no verdict in ${resultFile}: ${describeDeath(pid)}`);
      }
      return undefined;
    },
    timeoutMs,
    `a verdict from pid ${pid} in ${resultFile}`,
  );
  return result.trim();
}

export interface Cycle {
  cp: Checkpoint;
  restored: Restored;
  result: string;
}

/**
 * The whole round trip: dump (killing the victim), restore, optionally look at the restored process
 * before it verifies itself, then ask for its verdict.
 */
export async function dumpRestoreCheck(
  v: Victim,
  opts: { beforeCheck?: (r: Restored, cp: Checkpoint) => Promise<void> | void; method?: DumpMethod } = {},
): Promise<Cycle> {
  const cp = await checkpoint(v, { method: opts.method });
  await expectKilledByDump(v);
  // The restored process keeps the saved PID when it is free (the original is gone), else gets a new one.
  const restored = await restore(cp.dir);
  if (opts.beforeCheck) await opts.beforeCheck(restored, cp);
  const result = await checkResult(restored.pid, v.workdir);
  return { cp, restored, result };
}

/** An error of ours: native ones carry errno, and the operation and path that failed when there were some. */
export type CryopodError = Error & { code?: string; errno?: number; op?: string; path?: string };

/**
 * Awaits an operation that must fail with `code`, a readable message, mentioning each of `mentions`.
 * Whatever it returned by mistake (a restored pid) is tracked for cleanup.
 */
export async function expectFailure(
  op: Promise<unknown>,
  code: string | string[],
  mentions: Array<string | RegExp> = [],
): Promise<CryopodError> {
  let err: unknown;
  try {
    const value = await op;
    if (value && typeof value === 'object' && typeof (value as { pid?: unknown }).pid === 'number') {
      trackPid((value as { pid: number }).pid);
    }
  } catch (e) {
    err = e;
  }
  const codes = Array.isArray(code) ? code : [code];
  if (err === undefined) throw new Error(`expected a failure with ${codes.join(' or ')}, but it succeeded`);
  // Not `instanceof Error`: errors made by the native addon come from Node's realm, not jest's sandbox.
  if (Object.prototype.toString.call(err) !== '[object Error]') {
    throw new Error(`expected an Error with ${codes.join(' or ')}, got ${String(err)}`);
  }
  const e = err as CryopodError;
  if (e.code === undefined || !codes.includes(e.code)) {
    throw new Error(`expected code ${codes.join(' or ')}, got code ${e.code}: ${e.message}`);
  }
  expect(typeof e.message).toBe('string');
  expect(e.message.length).toBeGreaterThanOrEqual(10);
  expect(e.message).not.toMatch(/undefined|\[object |NaN/);
  for (const m of mentions) {
    if (typeof m === 'string') expect(e.message).toContain(m);
    else expect(e.message).toMatch(m);
  }
  return e;
}

/** The restored process must look like its original from outside: exe, cwd, comm, fds, signal masks, maps. */
export function expectSameProcessState(after: ProcSnapshot, before: ProcSnapshot, opts: { maps?: boolean } = {}): void {
  expect({ exe: after.exe, cwd: after.cwd, comm: after.comm }).toEqual({ exe: before.exe, cwd: before.cwd, comm: before.comm });
  expect({ fds: after.fds }).toEqual({ fds: before.fds });
  expect({ signals: after.signals }).toEqual({ signals: before.signals });
  if (opts.maps ?? true) expect({ maps: after.maps }).toEqual({ maps: before.maps });
}
