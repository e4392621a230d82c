/**
 * `cryopod restore`: bring a checkpoint back as a new process (local mode: a new PID; the container case
 * keeps the PID, see docs/local-mode.md). Every image file is verified against the manifest's sha256
 * before a page is mapped. When root restores, the process gets the saved real uid/gid back, never more.
 */
import { restoreTask } from '../native/lib';
import { readCheckpoint } from '../images';
import { checkReadableDir } from './image-dir';

export async function restoreProcess(opts: { dir: string }): Promise<{ pid: number; seconds: number }> {
  const started = process.hrtime.bigint();
  const dir = checkReadableDir(opts.dir);
  const { task, pagesPath } = await readCheckpoint(dir);
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const pid = await restoreTask({
    task,
    pagesPath,
    ...(asRoot ? { uid: task.creds.uid, gid: task.creds.gid } : {}),
  });
  return { pid, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
