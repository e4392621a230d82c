/**
 * `cryopod restore`: bring a checkpoint back: one process, or a whole process tree (with its PIDs,
 * sessions, groups and pipes). See docs/local-mode.md. Every image file is verified against the manifest's
 * sha256 before the restored process runs a single instruction: the metadata images before anything is
 * decoded, the pages images by the native fill in the same pass that writes them into the stopped stub
 * (on every core, overlapping the hashing with the memory fill). A mismatch fails the restore with the
 * same ECHECKSUM as the reader's, and the half-built stub is killed. When root restores, the process
 * gets the saved real uid/gid back, never more.
 */
import * as path from 'path';
import { restoreTask, restoreTree } from '../native/lib';
import { InheritFd } from '../native/lib/types';
import { ImageError, readCheckpoint } from '../images';
import { checkReadableDir } from './image-dir';

export interface RestoreSummary {
  pid: number;
  /** Whole restore. */
  seconds: number;
  /**
   * Reading and verifying the metadata images (and the pages files' sizes) before anything is mapped.
   * The pages images' sha256 is computed during the morph, overlapped with the memory fill.
   */
  verifySeconds: number;
  /** The native morph of the stub into the saved task, including the pages images' verification. */
  morphSeconds: number;
}

/** The native fill's "<path>: sha256 is X, the manifest says Y" as the reader's own error. */
function asImageError(err: unknown): unknown {
  const e = err as { code?: string; message?: string };
  if (e?.code !== 'ECHECKSUM' || typeof e.message !== 'string') return err;
  const m = /^(.*): (sha256 is [0-9a-f]{64}, the manifest says [0-9a-f]{64})$/.exec(e.message);
  return m ? new ImageError('ECHECKSUM', path.basename(m[1]), m[2], { cause: err }) : err;
}

/**
 * `inheritFds`: what replaces each external fd of the checkpoint (a pipe whose other end was outside the
 * tree); by default a saved fd 0, 1 or 2 takes this process's own.
 */
export async function restoreProcess(opts: { dir: string; inheritFds?: InheritFd[] }): Promise<RestoreSummary> {
  const started = process.hrtime.bigint();
  const dir = checkReadableDir(opts.dir);
  const { tree, pagesPaths, task, pagesPath, pagesDigests } = await readCheckpoint(dir, { deferPagesHash: true });
  if (pagesDigests === undefined) throw new Error('internal: the reader returned no pages digests to verify');
  const verified = process.hrtime.bigint();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const creds = asRoot ? { uid: task.creds.uid, gid: task.creds.gid } : {};
  // A tree (or a process with pipes) comes back whole, with its PIDs; a lone process may take a new PID.
  let pid: number;
  try {
    pid =
      tree.tasks.length > 1 || tree.pipes.length > 0
        ? await restoreTree({ tree, pagesPaths, pagesDigests, inheritFds: opts.inheritFds, ...creds })
        : await restoreTask({ task, pagesPath, pagesDigest: pagesDigests[0], inheritFds: opts.inheritFds, ...creds });
  } catch (err) {
    throw asImageError(err);
  }
  const done = process.hrtime.bigint();
  return {
    pid,
    seconds: Number(done - started) / 1e9,
    verifySeconds: Number(verified - started) / 1e9,
    morphSeconds: Number(done - verified) / 1e9,
  };
}
