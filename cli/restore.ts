/**
 * `cryopod restore`: bring a checkpoint back: one process, or a whole process tree (with its PIDs,
 * sessions, groups and pipes). See docs/local-mode.md. Every image file is verified against the manifest's sha256
 * before a page is mapped. When root restores, the process gets the saved real uid/gid back, never more.
 */
import { restoreTask, restoreTree } from '../native/lib';
import { readCheckpoint } from '../images';
import { checkReadableDir } from './image-dir';

export interface RestoreSummary {
  pid: number;
  /** Whole restore. */
  seconds: number;
  /** Reading and verifying the images (sha256 of every file) before anything is mapped. */
  verifySeconds: number;
  /** The native morph of the stub into the saved task. */
  morphSeconds: number;
}

export async function restoreProcess(opts: { dir: string }): Promise<RestoreSummary> {
  const started = process.hrtime.bigint();
  const dir = checkReadableDir(opts.dir);
  const { tree, pagesPaths, task, pagesPath } = await readCheckpoint(dir);
  const verified = process.hrtime.bigint();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const creds = asRoot ? { uid: task.creds.uid, gid: task.creds.gid } : {};
  // A tree (or a process with pipes) comes back whole, with its PIDs; a lone process may take a new PID.
  const pid =
    tree.tasks.length > 1 || tree.pipes.length > 0
      ? await restoreTree({ tree, pagesPaths, ...creds })
      : await restoreTask({ task, pagesPath, ...creds });
  const done = process.hrtime.bigint();
  return {
    pid,
    seconds: Number(done - started) / 1e9,
    verifySeconds: Number(verified - started) / 1e9,
    morphSeconds: Number(done - verified) / 1e9,
  };
}
