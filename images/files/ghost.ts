/**
 * A deleted file held open (native/src/core/files/ghost.cc): a REG entry of cryopod_kind GHOST whose
 * name is the /proc link ("<path> (deleted)") and whose cryopod_contents are the file's bytes
 * (state.data, at most MAX_GHOST_BYTES), re-created as a ghost on restore.
 */

import { FileState, OpenFile } from '../../native/lib/types';
import { ImageError } from '../errors';
import { RegFileMsg } from '../wire';

export const MAX_GHOST_BYTES = 8 * 1024 * 1024;

export function ghostContents(f: OpenFile, what: string): Buffer {
  if (!f.path.endsWith(' (deleted)')) throw new ImageError('EINVAL', undefined, `${what}: a deleted file's path ends with " (deleted)"`);
  const data = f.state?.data ?? Buffer.alloc(0);
  if (data.length > MAX_GHOST_BYTES) throw new ImageError('ETOOBIG', undefined, `${what}: the deleted file holds ${data.length} bytes, over the cap of ${MAX_GHOST_BYTES}`);
  return data;
}

export function ghostState(reg: RegFileMsg, file: string): FileState {
  const data = reg.cryopod_contents === undefined ? Buffer.alloc(0) : Buffer.from(reg.cryopod_contents);
  if (data.length > MAX_GHOST_BYTES) throw new ImageError('ETOOBIG', file, `file id ${reg.id}: deleted file contents of ${data.length} bytes, over the cap of ${MAX_GHOST_BYTES}`);
  return { num: {}, text: {}, ...(data.length ? { data } : {}) };
}
