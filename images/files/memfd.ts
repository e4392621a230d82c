/**
 * memfd held as an fd (native/src/core/files/memfd.cc): a file_entry of type MEMFD carrying a
 * memfd_file_entry (`memfd`) with the flags and offset, and in its cryopod_ fields the name
 * (state.text.name) and the seals (state.num.seals). The contents (state.data, at most MAX_MEMFD_BYTES)
 * are written as CRIU writes them, in memfd-inode.img and shmem pages (../memfds.ts, which read.ts
 * gives back to state.data); images from before that kept them in cryopod_contents, which is still
 * read. inode_id is the file id: each fd is its own memfd here. Path "/memfd:<name> (deleted)".
 */

import { OpenFile } from '../../native/lib/types';
import { ImageError } from '../errors';
import { MAX_MEMFD_BYTES, MAX_PATH_BYTES } from '../limits';
import { u64FromNumber } from '../u64';
import { FD_TYPE_MEMFD } from '../wire';
import { DecodedKindFile, ImageFileKind, stateNum, u32Field, u64Field, ZERO_FOWN } from './kind';

const S_IFREG = 0o100000;

function encode(f: OpenFile, id: number, what: string): object {
  const name = f.state?.text.name;
  if (typeof name !== 'string' || Buffer.byteLength(name) > MAX_PATH_BYTES) throw new ImageError('EINVAL', undefined, `${what}: a memfd needs its name (state.text.name)`);
  const contents = f.state?.data ?? Buffer.alloc(0);
  if (contents.length > MAX_MEMFD_BYTES) throw new ImageError('ETOOBIG', undefined, `${what}: memfd "${name}" holds ${contents.length} bytes, over the cap of ${MAX_MEMFD_BYTES}`);
  const seals = stateNum(f, 'seals', what);
  if (seals > 0xffff_ffffn) throw new ImageError('EINVAL', undefined, `${what}: seals ${seals} are not a u32`);
  return {
    id, flags: f.flags, pos: u64FromNumber(f.pos, `${what}.pos`), fown: ZERO_FOWN, inode_id: id,
    cryopod_name: name, cryopod_seals: Number(seals),
  };
}

function decode(msg: Record<string, unknown>, file: string, what: string): DecodedKindFile {
  const name = msg.cryopod_name;
  if (typeof name !== 'string') throw new ImageError('EDECODE', file, `${what}: a memfd without cryopod_name (an image from CRIU keeps it in memfd.img, which Cryopod does not read)`);
  const contents = msg.cryopod_contents === undefined ? Buffer.alloc(0) : Buffer.from(msg.cryopod_contents as Uint8Array);
  if (contents.length > MAX_MEMFD_BYTES) throw new ImageError('ETOOBIG', file, `${what}: memfd contents of ${contents.length} bytes, over the cap of ${MAX_MEMFD_BYTES}`);
  const pos = u64Field(msg, 'pos', file, what);
  if (pos > BigInt(Number.MAX_SAFE_INTEGER)) throw new ImageError('EDECODE', file, `${what}: pos at or above 2^53`);
  return {
    kind: 'memfd', path: `/memfd:${name} (deleted)`, flags: u32Field(msg, 'flags', file, what), pos: Number(pos), size: contents.length,
    mode: S_IFREG | 0o777,
    state: { num: { seals: typeof msg.cryopod_seals === 'number' ? msg.cryopod_seals : 0 }, text: { name }, data: contents },
  };
}

export const memfdKind: ImageFileKind = { kind: 'memfd', fdType: FD_TYPE_MEMFD, field: 'memfd', encode, decode };
