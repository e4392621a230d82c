/**
 * Helpers for the tests of real multi-process servers nobody here wrote (PostgreSQL, nginx): started as
 * in a container, with stdout and stderr on one pipe read by a process outside their tree
 * (`… 2>&1 | cat > before.log`), their whole process tree tracked so that cleanup() kills it even when
 * a test fails, and probes over their sockets.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import { trackPid, waitFor } from './harness';
import { CLEAN_EXEC } from './namespaces';

const quote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;

/**
 * Starts `argv` detached (not our child: docs/native.md), with only stdio open, its stdout and stderr on
 * a pipe to `cat > logFile`, run by `user` when given (setpriv, which execs: no process in between).
 */
export async function startBehindPipe(argv: string[], logFile: string, opts: { user?: string; cwd?: string } = {}): Promise<void> {
  const asUser = opts.user ? ['setpriv', `--reuid=${opts.user}`, `--regid=${opts.user}`, '--clear-groups', '--'] : [];
  const cmd = [...asUser, ...CLEAN_EXEC, ...argv].map(quote).join(' ');
  const sh = spawn('setsid', ['-f', 'sh', '-c', `exec ${cmd} </dev/null 2>&1 | cat > ${quote(logFile)}`], { stdio: 'ignore', cwd: opts.cwd ?? '/' });
  await new Promise((resolve) => sh.on('exit', resolve));
}

/** The root and every current descendant of it, parents first. */
export function treeOf(root: number): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    let tids: string[] = [];
    try {
      tids = fs.readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const kids = fs.readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        for (const k of kids ? kids.split(/\s+/).map(Number) : []) if (!out.includes(k)) out.push(k);
      } catch {
        // exited meanwhile
      }
    }
  }
  return out;
}

/** Tracks the tree for cleanup() (which kills every tracked PID) and returns it. */
export function trackTree(root: number): number[] {
  const pids = treeOf(root);
  pids.forEach(trackPid);
  return pids;
}

/** A process's state letter, or undefined when it is gone. */
export function stateOf(pid: number): string | undefined {
  try {
    return /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** The uid of a user of this machine. */
export function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}

/** Waits until each PID is free again (no /proc entry: killed and reaped), so a restore can take it back. */
export async function waitReaped(pids: number[], what: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(() => (pids.every((p) => !fs.existsSync(`/proc/${p}`)) ? true : undefined), timeoutMs, `${what} to be reaped`);
}
