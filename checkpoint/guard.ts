/**
 * The dump's guard: a small process of its own, started before the native core touches the task, that
 * outlives a dumper killed at any moment (SIGKILL, the OOM killer, a node agent's crash) and puts the
 * task back when that happens. It holds the read end of a pipe whose write end only the dumper holds:
 * EOF without the word "done" means the dumper died before it finished. Then it runs the native rescue
 * on the task and on every process of its tree (native/lib rescueTask: a task parked in the parasite gets
 * its own registers, mask and FPU state back, and so does each of its threads parked there; the
 * parasite's area and fds go, snapshot children are reaped) and SIGCONTs a group stop the dump left
 * (on processes that were not stopped before it). A task the dumper had killed as asked is simply gone.
 *
 * What the guard cannot help: a dumper and its guard killed together (kill of the process group); the
 * task then stays parked in the parasite (never killed, never trapped) until a rescue runs
 * (`rescueTask`, the node agent's journal recovery on restart).
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { processState } from './process-state';
import { livingDescendants, startTicks } from './rescue';

export interface DumpGuard {
  /** The dump finished (succeeded, or failed and cleaned up itself): the guard exits without acting. */
  done(): void;
}

function guardScript(): string {
  // Compiled next to this file in dist/; from the sources (ts-jest), the compiled copy in dist/.
  if (__filename.endsWith('.js')) return path.join(__dirname, 'guard-main.js');
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return path.join(dir, 'dist', 'checkpoint', 'guard-main.js');
}

export function startGuard(pid: number): DumpGuard {
  const script = guardScript();
  if (!fs.existsSync(script)) throw new Error(`the dump guard is not built (${script} is missing): run npm run build`);
  // Stopped before we touched them (the root, or a process of its tree): their stop is not ours to end.
  const stoppedBefore = [pid, ...livingDescendants(pid)].filter((p) => processState(p) === 'T');
  const child = spawn(process.execPath, [script, String(pid), String(startTicks('self') ?? 0), stoppedBefore.join(',')], {
    stdio: ['pipe', 'ignore', 'inherit'],
    detached: true, // its own session: a terminal's SIGINT to the dumper's group does not reach it
  });
  child.unref();
  const stdin = child.stdin!;
  stdin.on('error', () => {}); // the guard gone first (it crashed): nothing to tell it
  (stdin as unknown as { unref?: () => void }).unref?.();
  return {
    done() {
      stdin.end('done\n');
    },
  };
}
