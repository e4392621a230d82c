/**
 * Deleted files in CRIU's layout: a deleted file held open (an fd of kind 'ghost') or mapped (a VMA with
 * `ghost`) has its reg_file_entry in files.img as any file, with its path; remap-fpath.img says that file
 * id is a ghost (remap_file_path_entry, remap_type GHOST) and ghost-file-<remap_id>.img holds its
 * contents:
 *
 *   remap-fpath.img     IMG_COMMON REMAP_FPATH  u32 len, remap_file_path_entry {orig_id, remap_id, GHOST} ...
 *   ghost-file-<N>.img  IMG_COMMON GHOST_FILE   u32 len, ghost_file_entry {uid, gid, mode, dev, ino, size}
 *                                               then `size` bytes of contents, raw, to the end of the file
 *
 * as `crit decode` reads them (its ghost_file_handler takes the rest of the file as the payload). Several
 * entries (the VMAs of one mapped file) may point at one ghost. Each ghost is at most MAX_GHOST_BYTES.
 */

import { ImageError } from './errors';
import { frameImage, unframeImage } from './codec';
import { MAX_ENTRY_BYTES } from './limits';
import { IMG_COMMON, MAGIC, imageName } from './magic';
import { decodeEntry, encodeEntry, messages, U64 } from './proto';
import { u64FromNumber } from './u64';

export const MAX_GHOST_BYTES = 8 * 1024 * 1024;
/** Ghost files of one checkpoint (each an image file in the manifest). */
export const MAX_GHOSTS = 1024;
const REMAP_GHOST = 1;

export interface GhostContents {
  mode: number;
  data: Buffer;
  dev?: number;
  ino?: number;
}

export interface EncodedGhostImage {
  name: string;
  data: Buffer;
}

/** The writer's side: ghosts handed out ids from 1, files.img ids pointed at them. */
export class GhostImages {
  private readonly ghosts: GhostContents[] = [];
  private readonly remaps: Array<{ orig_id: number; remap_id: number; remap_type: number }> = [];

  /** A new ghost file for `origId`; returns its id, for `link` of other entries of the same file. */
  add(origId: number, g: GhostContents, what: string): number {
    if (!Buffer.isBuffer(g.data)) throw new ImageError('EINVAL', undefined, `${what}: the deleted file's contents are not a Buffer`);
    if (g.data.length > MAX_GHOST_BYTES) throw new ImageError('ETOOBIG', undefined, `${what}: the deleted file holds ${g.data.length} bytes, over the cap of ${MAX_GHOST_BYTES}`);
    if (this.ghosts.length >= MAX_GHOSTS) throw new ImageError('ETOOBIG', undefined, `${what}: more than ${MAX_GHOSTS} deleted files`);
    this.ghosts.push(g);
    const id = this.ghosts.length;
    this.link(origId, id);
    return id;
  }

  link(origId: number, ghostId: number): void {
    this.remaps.push({ orig_id: origId, remap_id: ghostId, remap_type: REMAP_GHOST });
  }

  encode(): EncodedGhostImage[] {
    if (this.remaps.length === 0) return [];
    const msg = messages();
    const out: EncodedGhostImage[] = [{ name: imageName.remapFpath(), data: frameImage('REMAP_FPATH', this.remaps.map((r) => encodeEntry(msg.remapFpath, r))) }];
    this.ghosts.forEach((g, i) => {
      const entry = encodeEntry(msg.ghostFile, {
        uid: 0, gid: 0, mode: g.mode >>> 0,
        ...(g.dev !== undefined ? { dev: g.dev >>> 0 } : {}),
        ...(g.ino !== undefined ? { ino: u64FromNumber(g.ino, `ghost ${i + 1} ino`) } : {}),
        size: u64FromNumber(g.data.length, `ghost ${i + 1} size`),
      });
      const head = Buffer.alloc(12);
      head.writeUInt32LE(IMG_COMMON, 0);
      head.writeUInt32LE(MAGIC.GHOST_FILE, 4);
      head.writeUInt32LE(entry.length, 8);
      out.push({ name: imageName.ghostFile(i + 1), data: Buffer.concat([head, Buffer.from(entry), g.data]) });
    });
    return out;
  }
}

interface RemapMsg {
  orig_id: number;
  remap_id: number;
  remap_type?: number;
}

interface GhostFileMsg {
  mode: number;
  chunks?: boolean;
  size?: string | number;  // protobufjs gives 64-bit fields as decimal strings (or numbers)
}

/** One ghost-file-<id>.img: its mode and contents (chunked ghosts, which Cryopod never writes, are refused). */
export function decodeGhostFile(file: string, buf: Uint8Array): { mode: number; data: Buffer } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 12) throw new ImageError('ETRUNC', file, `${b.length} bytes is too short for the magics and an entry length`);
  if (b.readUInt32LE(0) !== IMG_COMMON || b.readUInt32LE(4) !== MAGIC.GHOST_FILE) {
    throw new ImageError('EMAGIC', file, `magics are 0x${b.readUInt32LE(0).toString(16)} 0x${b.readUInt32LE(4).toString(16)}, expected IMG_COMMON and GHOST_FILE (0x${MAGIC.GHOST_FILE.toString(16)})`);
  }
  const len = b.readUInt32LE(8);
  if (len > MAX_ENTRY_BYTES || len > b.length - 12) throw new ImageError('ETRUNC', file, `ghost_file_entry of ${len} bytes, but ${b.length - 12} bytes follow`);
  const e = decodeEntry<GhostFileMsg>(file, 'ghost_file_entry', messages().ghostFile, b.subarray(12, 12 + len));
  if (e.chunks === true) throw new ImageError('EDECODE', file, 'a chunked ghost file (written by CRIU for sparse files) is not read by Cryopod');
  const data = b.subarray(12 + len);
  if (data.length > MAX_GHOST_BYTES) throw new ImageError('ETOOBIG', file, `the deleted file holds ${data.length} bytes, over the cap of ${MAX_GHOST_BYTES}`);
  if (e.size !== undefined && BigInt(e.size) !== BigInt(data.length)) throw new ImageError('ETRUNC', file, `size says ${e.size} bytes, the image holds ${data.length}`);
  return { mode: e.mode, data: Buffer.from(data) };
}

/**
 * remap-fpath.img and the ghost files it names (`read` returns a verified file of the manifest, `listed`
 * whether the manifest lists it): files.img id → its ghost (id, mode, contents). Empty without remaps.
 */
export async function readGhosts(
  listed: (name: string) => boolean,
  read: (name: string) => Promise<Buffer>,
): Promise<Map<number, { ghostId: number; mode: number; data: Buffer }>> {
  const out = new Map<number, { ghostId: number; mode: number; data: Buffer }>();
  const remapImg = imageName.remapFpath();
  if (!listed(remapImg)) return out;
  const entries = unframeImage(remapImg, 'REMAP_FPATH', await read(remapImg));
  if (entries.length > 64 * MAX_GHOSTS) throw new ImageError('ETOOBIG', remapImg, `${entries.length} entries, over the cap of ${64 * MAX_GHOSTS}`);
  const ghosts = new Map<number, { mode: number; data: Buffer }>();
  for (const [i, bytes] of entries.entries()) {
    const r = decodeEntry<RemapMsg>(remapImg, `entry ${i}`, messages().remapFpath, bytes);
    if ((r.remap_type ?? 0) !== REMAP_GHOST) throw new ImageError('EDECODE', remapImg, `entry ${i}: remap type ${r.remap_type ?? 0} (only ghosts, type 1, are read)`);
    if (out.has(r.orig_id)) throw new ImageError('EDECODE', remapImg, `entry ${i}: file id ${r.orig_id} is remapped twice`);
    let g = ghosts.get(r.remap_id);
    if (g === undefined) {
      if (ghosts.size >= MAX_GHOSTS) throw new ImageError('ETOOBIG', remapImg, `more than ${MAX_GHOSTS} ghost files`);
      const name = imageName.ghostFile(r.remap_id);
      if (!listed(name)) throw new ImageError('EMISSING', name, `file id ${r.orig_id} is a ghost in ${remapImg}, but ${name} is not listed in the manifest`);
      g = decodeGhostFile(name, await read(name));
      ghosts.set(r.remap_id, g);
    }
    out.set(r.orig_id, { ghostId: r.remap_id, ...g });
  }
  return out;
}
