/**
 * One repeated message field of a protobuf entry, taken apart without decoding the whole entry: an
 * mm_entry holds every VMA of a task, and protobufjs would build all of them at once (some 400 bytes of
 * objects each, on top of what the reader makes of them) before a cap could be checked. Here the entry's
 * top-level fields are walked on the wire: the repeated field's items can be counted (allocating
 * nothing) or handed out one by one, and the rest of the entry, without them, decoded as usual.
 */
import * as protobuf from 'protobufjs/minimal';
import { ImageError } from './errors';

const LENGTH_DELIMITED = 2;

function walk(file: string, what: string, bytes: Uint8Array, field: number, item: (b: Uint8Array) => void, other: (b: Uint8Array) => void): void {
  const r = protobuf.Reader.create(bytes);
  try {
    while (r.pos < r.len) {
      const start = r.pos;
      const tag = r.uint32();
      if (tag >>> 3 === field && (tag & 7) === LENGTH_DELIMITED) {
        const len = r.uint32();
        if (len > r.len - r.pos) throw new RangeError(`field ${field} item of ${len} bytes runs past the end`);
        item(bytes.subarray(r.pos, r.pos + len));
        r.pos += len;
      } else {
        r.skipType(tag & 7);
        other(bytes.subarray(start, r.pos));
      }
    }
  } catch (err) {
    if (err instanceof ImageError) throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw new ImageError('EDECODE', file, `${what} is not valid protobuf: ${why}`, { cause: err });
  }
}

/** How many items of `field` the entry holds. */
export function countRepeated(file: string, what: string, bytes: Uint8Array, field: number): number {
  let n = 0;
  walk(file, what, bytes, field, () => n++, () => undefined);
  return n;
}

/** Calls `each` with every item of `field` in order; returns the entry's bytes without them. */
export function splitRepeated(file: string, what: string, bytes: Uint8Array, field: number, each: (item: Uint8Array, index: number) => void): Buffer {
  const rest: Uint8Array[] = [];
  let i = 0;
  walk(file, what, bytes, field, (b) => each(b, i++), (b) => rest.push(b));
  return Buffer.concat(rest);
}
