/**
 * Victims started in namespaces of their own (as in a container), for the tests that dump them from
 * the host's: `unshare` with the flags asked for, the PID namespace always, the victim its init (or a
 * child of a shell that is). The ready line is the victim's view; the host PID is found by its NSpid.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { makeTempDir, trackPid, waitFor } from './procs';

/** Closes every inherited fd above 2 before the victim runs (the test runner's pipes would be dumped). */
export const CLEAN_EXEC = ['/usr/bin/python3', '-c', 'import os, sys; os.closerange(3, 65536); os.execv(sys.argv[1], sys.argv[1:])'];

/** NSpid of a task or thread: its ID in every PID namespace it is visible in, ours first. */
export function nsPids(pid: number, tid = pid): number[] {
  const line = /^NSpid:\s*(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1];
  if (line === undefined) throw new Error(`no NSpid for ${pid}/${tid}`);
  return line.trim().split(/\s+/).map(Number);
}

/** The namespace of `kind` (pid, net, mnt, ...) `pid` lives in, as its /proc link reads. */
export function namespaceOf(pid: number, kind = 'pid'): string {
  return fs.readlinkSync(`/proc/${pid}/ns/${kind}`);
}

/** Host PID of the process of a namespace started for `workdir` whose ID there is `nsPid`. */
export function hostPidOf(workdir: string, nsPid: number): number | undefined {
  for (const entry of fs.readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(workdir)) continue;
      const ids = nsPids(pid);
      if (ids.length === 2 && ids[1] === nsPid && !fs.readlinkSync(`/proc/${pid}/exe`).includes('python')) return pid;
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** The victim's ready line (<workdir>/ready), once it is written. */
export function readyLine(workdir: string, what: string): Promise<string> {
  const f = path.join(workdir, 'ready');
  return waitFor(() => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim() : undefined), 30_000, `${what} ready`);
}

/**
 * Starts `file args... workdir` as the init of a new PID namespace, and of the other namespaces
 * `unshareFlags` name (e.g. --net, --mount); returns its ready line and host PID.
 */
export async function startInNamespace(
  file: string,
  args: string[],
  unshareFlags: string[] = [],
): Promise<{ workdir: string; ready: string; pid: number }> {
  const workdir = makeTempDir('pidns');
  execFileSync('setsid', ['-f', 'unshare', ...unshareFlags, '--pid', '--fork', ...CLEAN_EXEC, file, ...args, workdir], { stdio: 'ignore', cwd: '/' });
  const ready = await readyLine(workdir, file);
  const pid = await waitFor(() => hostPidOf(workdir, 1), 10_000, `the host PID of ${file}`);
  trackPid(pid);
  return { workdir, ready, pid };
}
