/**
 * Entry framing of a CRIU image file: two u32 magics, then entries, each a u32 little-endian length
 * followed by that many bytes of protobuf. (See index.ts for the drawing.) This file knows nothing of
 * protobuf: it checks magics, lengths and counts, so that a hostile length is refused before any
 * buffer is sliced or decoded.
 */

import { ImageError } from './errors';
import { MAX_ENTRIES, MAX_ENTRY_BYTES } from './limits';
import { IMG_COMMON, IMG_SERVICE, MAGIC, ImageKind, firstMagicOf } from './magic';

const HEADER_BYTES = 8;
const LENGTH_BYTES = 4;

function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

/** Frames already-encoded entries into a whole image file. */
export function frameImage(kind: ImageKind, entries: readonly Uint8Array[]): Buffer {
  let size = HEADER_BYTES;
  for (const e of entries) size += LENGTH_BYTES + e.length;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32LE(firstMagicOf(kind), 0);
  out.writeUInt32LE(MAGIC[kind], 4);
  let off = HEADER_BYTES;
  for (const e of entries) {
    // The writer holds itself to the reader's cap: never produce what we would refuse.
    if (e.length > MAX_ENTRY_BYTES) {
      throw new ImageError('ETOOBIG', undefined, `${kind} entry of ${e.length} bytes is over the ${MAX_ENTRY_BYTES}-byte cap`);
    }
    out.writeUInt32LE(e.length, off);
    off += LENGTH_BYTES;
    out.set(e, off);
    off += e.length;
  }
  return out;
}

/**
 * Walks an image file's entries, calling `each` with a view of every one (not a copy). `file` names the
 * file in errors. Checks the two magics, every length against MAX_ENTRY_BYTES and the end of the file,
 * and the number of entries against MAX_ENTRIES; returns how many there are.
 */
function walkEntries(file: string, kind: ImageKind, buf: Uint8Array, each: (entry: Uint8Array) => void): number {
  if (buf.length < HEADER_BYTES) {
    throw new ImageError('ETRUNC', file, `${buf.length} bytes is too short for the image magics (${HEADER_BYTES} bytes)`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const first = view.getUint32(0, true);
  const second = view.getUint32(4, true);
  const wantFirst = firstMagicOf(kind);
  if (first !== wantFirst) {
    const known = first === IMG_COMMON ? 'IMG_COMMON' : first === IMG_SERVICE ? 'IMG_SERVICE' : 'not a CRIU image';
    throw new ImageError('EMAGIC', file, `first magic is ${hex32(first)} (${known}), expected ${hex32(wantFirst)}`);
  }
  if (second !== MAGIC[kind]) {
    const other = (Object.keys(MAGIC) as ImageKind[]).find((k) => MAGIC[k] === second);
    const known = other === undefined ? 'unknown' : `a ${other} image`;
    throw new ImageError('EMAGIC', file, `image magic is ${hex32(second)} (${known}), expected ${hex32(MAGIC[kind])} (${kind})`);
  }

  let index = 0;
  let off = HEADER_BYTES;
  while (off < buf.length) {
    if (index >= MAX_ENTRIES) {
      throw new ImageError('ETOOBIG', file, `more than ${MAX_ENTRIES} entries`);
    }
    if (buf.length - off < LENGTH_BYTES) {
      throw new ImageError('ETRUNC', file, `entry ${index} at offset ${off}: file ends inside its 4-byte length (${buf.length - off} bytes left)`);
    }
    const len = view.getUint32(off, true);
    if (len > MAX_ENTRY_BYTES) {
      throw new ImageError('ETOOBIG', file, `entry ${index} at offset ${off}: length ${len} is over the ${MAX_ENTRY_BYTES}-byte cap`);
    }
    off += LENGTH_BYTES;
    if (len > buf.length - off) {
      throw new ImageError('ETRUNC', file, `entry ${index} at offset ${off - LENGTH_BYTES}: length ${len} but only ${buf.length - off} bytes left`);
    }
    each(buf.subarray(off, off + len));
    off += len;
    index++;
  }
  return index;
}

/** Splits an image file into its entries (views into `buf`), with walkEntries' checks. */
export function unframeImage(file: string, kind: ImageKind, buf: Uint8Array): Uint8Array[] {
  const entries: Uint8Array[] = [];
  walkEntries(file, kind, buf, (e) => entries.push(e));
  return entries;
}

/**
 * How many entries the image holds, with unframeImage's checks, allocating nothing per entry: what the
 * reader's entry budget (read.ts) counts before an image is decoded.
 */
export function countEntries(file: string, kind: ImageKind, buf: Uint8Array): number {
  return walkEntries(file, kind, buf, () => undefined);
}
