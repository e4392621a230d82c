/**
 * A server process (etcd, kube-apiserver) that cannot outlive the test run that started it:
 *  - stop() asks politely (SIGTERM), then SIGKILLs after a grace period, and waits until it is reaped;
 *  - a process 'exit' hook SIGKILLs whatever is still running when Node exits without stop(), and
 *    SIGINT/SIGTERM/SIGHUP do the same before Node dies of the signal;
 *  - where util-linux's setpriv exists (every Debian), the child also gets PR_SET_PDEATHSIG=SIGKILL, so
 *    the kernel kills it when the Node process that spawned it ends in any way, even SIGKILL. Under jest
 *    this is what counts: jest gives test code a copy of `process` whose 'exit' event never fires.
 * Output goes to a log file (not a pipe Node must drain), whose tail explains a failed start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';
const running = new Set<ChildProcess>();

function killAllNow(): void {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

let hooked = false;
function hookProcessExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllNow();
      // Die of the same signal, as Node would have without this listener, unless the program handles
      // the signal itself (then its own listener decides).
      process.removeListener(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Set once the process has exited (and been reaped). */
  exited(): boolean;
  /** Resolves when the process has exited. */
  readonly exit: Promise<void>;
  /** The last n lines of the log, for error messages. */
  logTail(n?: number): string;
  stop(graceMs?: number): Promise<void>;
}

export function startServer(name: string, binary: string, args: string[], logPath: string): ServerProcess {
  hookProcessExit();
  const log = openSync(logPath, 'a');
  const [file, argv] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, args];
  let child: ChildProcess;
  try {
    child = spawn(file, argv, { stdio: ['ignore', log, log] });
  } finally {
    closeSync(log); // the child has its own copy
  }
  if (child.pid === undefined) throw new Error(`${name}: could not start ${binary}`);
  const pid = child.pid;
  // A forgotten stop() must not keep jest (or any runner) alive: when it exits, PDEATHSIG and the exit
  // hook end the server. stop() keeps the loop alive itself while it waits (its SIGKILL timer).
  child.unref();
  running.add(child);
  let done = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      done = true;
      running.delete(child);
      resolve();
    });
    child.once('error', () => {
      done = true;
      running.delete(child);
      resolve();
    });
  });

  // The last error lines first (klog's E/F lines, zap's error levels): a failed start is usually
  // explained by one of them, while the last lines are often unrelated shutdown noise.
  const logTail = (n = 20): string => {
    let lines: string[];
    try {
      lines = readFileSync(logPath, 'utf8').trimEnd().split('\n');
    } catch {
      return '(no log)';
    }
    const errors = lines.filter((l) => /^[EF]\d{4} |"level":"(error|fatal|panic)"/.test(l)).slice(-5);
    return [...(errors.length ? ['errors:', ...errors, 'last lines:'] : []), ...lines.slice(-n)].join('\n');
  };

  const stop = async (graceMs = 5000): Promise<void> => {
    if (done) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exit;
    clearTimeout(timer);
  };

  return { name, pid, logPath, exit, exited: () => done, logTail, stop };
}

/** Polls check() until it is true; fails early if the process exits, and on timeout, with its log tail. */
export async function waitUntil(proc: ServerProcess, what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (proc.exited()) throw new Error(`${proc.name} exited before ${what}; last log lines (${proc.logPath}):\n${proc.logTail()}`);
    try {
      if (await check()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${proc.name} not ${what} after ${timeoutMs} ms${last ? ` (last error: ${last})` : ''}; ` +
          `last log lines (${proc.logPath}):\n${proc.logTail()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
