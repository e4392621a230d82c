/**
 * `cryopod restore`: bring a checkpoint back as a new process (local mode: a new PID; the container case
 * keeps the PID, see docs/local-mode.md). Every image file is verified against the manifest's sha256
 * before a page is mapped. When root restores, the process gets the saved real uid/gid back, never more.
 */
import { restoreTask } from '../native/lib';
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
  const { task, pagesPath } = await readCheckpoint(dir);
  const verified = process.hrtime.bigint();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const pid = await restoreTask({
    task,
    pagesPath,
    ...(asRoot ? { uid: task.creds.uid, gid: task.creds.gid } : {}),
  });
  const done = process.hrtime.bigint();
  return {
    pid,
    seconds: Number(done - started) / 1e9,
    verifySeconds: Number(verified - started) / 1e9,
    morphSeconds: Number(done - verified) / 1e9,
  };
}
