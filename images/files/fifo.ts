/**
 * FIFO (named pipe, native/src/core/files/fifo.cc): a file_entry of type FIFO carrying a fifo_entry
 * (`fifo`): pipe_id the inode's low 32 bits, and in cryopod_ fields the path, the fd's O_* flags, its
 * mode and the FIFO's identity (state.num.dev, ino). The bytes it held (state.data, at most
 * MAX_PIPE_BYTES; none when a process outside the tree held it) go, as in CRIU, into fifo-data.img
 * (encode.ts, keyed by pipe_id; read.ts gives them back to the first fd of that FIFO); images written
 * before that kept them in cryopod_data, which is still read.
 */

import { OpenFile } from '../../native/lib/types';
import { ImageError } from '../errors';
import { MAX_PATH_BYTES, MAX_PIPE_BYTES } from '../limits';
import { u64FromBigInt } from '../u64';
import { FD_TYPE_FIFO, S_IFIFO, S_IFMT } from '../wire';
import { DecodedKindFile, ImageFileKind, numOf, stateNum, u32Field, u64Field } from './kind';

function encode(f: OpenFile, id: number, what: string): object {
  if (!f.path.startsWith('/') || Buffer.byteLength(f.path) > MAX_PATH_BYTES) throw new ImageError('EINVAL', undefined, `${what}: a FIFO needs an absolute path`);
  if ((f.mode & S_IFMT) !== S_IFIFO) throw new ImageError('EINVAL', undefined, `${what}: mode 0o${f.mode.toString(8)} is not that of a FIFO`);
  const data = f.state?.data ?? Buffer.alloc(0);
  if (data.length > MAX_PIPE_BYTES) throw new ImageError('ETOOBIG', undefined, `${what}: the FIFO holds ${data.length} bytes, over the cap of ${MAX_PIPE_BYTES}`);
  const ino = stateNum(f, 'ino', what);
  return {
    id, pipe_id: Number(ino & 0xffff_ffffn), cryopod_path: f.path, cryopod_flags: f.flags, cryopod_mode: f.mode,
    cryopod_dev: u64FromBigInt(stateNum(f, 'dev', what), `${what}.state.num.dev`), cryopod_ino: u64FromBigInt(ino, `${what}.state.num.ino`),
  };
}

function decode(msg: Record<string, unknown>, file: string, what: string): DecodedKindFile {
  const path = msg.cryopod_path;
  if (typeof path !== 'string' || !path.startsWith('/')) throw new ImageError('EDECODE', file, `${what}: a FIFO without its path (cryopod_path)`);
  const data = msg.cryopod_data === undefined ? Buffer.alloc(0) : Buffer.from(msg.cryopod_data as Uint8Array);
  if (data.length > MAX_PIPE_BYTES) throw new ImageError('ETOOBIG', file, `${what}: FIFO bytes ${data.length}, over the cap of ${MAX_PIPE_BYTES}`);
  const mode = u32Field(msg, 'cryopod_mode', file, what);
  if ((mode & S_IFMT) !== S_IFIFO) throw new ImageError('EDECODE', file, `${what}: mode 0o${mode.toString(8)} is not that of a FIFO`);
  const num = { dev: numOf(u64Field(msg, 'cryopod_dev', file, what)), ino: numOf(u64Field(msg, 'cryopod_ino', file, what)) };
  return { kind: 'fifo', path, flags: u32Field(msg, 'cryopod_flags', file, what), pos: 0, size: 0, mode, state: { num, text: {}, ...(data.length ? { data } : {}) } };
}

export const fifoKind: ImageFileKind = { kind: 'fifo', fdType: FD_TYPE_FIFO, field: 'fifo', encode, decode };
