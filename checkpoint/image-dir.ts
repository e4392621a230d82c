/** Checks on an image directory before anything touches a process. */
import * as fs from 'fs';
import * as path from 'path';
import { MANIFEST_FILE } from '../images/magic';
import { CheckpointError } from './errors';

/** The directory exists, is a directory, and holds no checkpoint yet. */
export function checkReadableDir(dir: string): string {
  const abs = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (err) {
    throw new CheckpointError('ENOENT', `image directory ${abs} does not exist`, { cause: err });
  }
  if (!st.isDirectory()) throw new CheckpointError('ENOTDIR', `${abs} is not a directory`);
  return abs;
}

/** Names a dump writes: every image, the manifest and its temp file. */
function isImageName(name: string): boolean {
  return name.endsWith('.img') || name === MANIFEST_FILE || name === `.${MANIFEST_FILE}.tmp`;
}

/**
 * A dump target must exist, hold no earlier checkpoint and be writable: probed by creating a file, since
 * root passes every permission check but still cannot write to a read-only mount. A name the dump will
 * write that is already there (a file, or a symlink planted to catch the memory or overwrite something)
 * refuses the dump before any process is touched; every image is then created with O_EXCL, so one planted
 * after this check fails the dump too instead of being followed or reused.
 */
export function checkWritableDir(dir: string): string {
  const abs = checkReadableDir(dir);
  if (fs.existsSync(path.join(abs, MANIFEST_FILE))) {
    throw new CheckpointError('EEXIST', `${abs} already holds a checkpoint (${MANIFEST_FILE}); use an empty directory`);
  }
  const taken = fs.readdirSync(abs).filter(isImageName);
  if (taken.length > 0) {
    throw new CheckpointError('EEXIST', `${abs} already holds ${taken.slice(0, 3).join(', ')}${taken.length > 3 ? ', ...' : ''}, which a dump would write; use an empty directory`);
  }
  const probe = path.join(abs, `.cryopod-write-probe-${process.pid}`);
  try {
    fs.writeFileSync(probe, '', { flag: 'wx' });
    fs.unlinkSync(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EACCES';
    throw new CheckpointError(code, `image directory ${abs} is not writable (${code})`, { cause: err });
  }
  return abs;
}
