/**
 * The primitives every image decoder shares: an image's single entry, and a path checked against its cap.
 */
import { unframeImage } from './codec';
import { ImageError } from './errors';
import { MAX_PATH_BYTES } from './limits';
import { ImageKind } from './magic';
import { decodeEntry, messages } from './proto';

type Type = ReturnType<typeof messages>[keyof ReturnType<typeof messages>];

/** The single entry of an image that must hold exactly one, undecoded. */
export function singleEntry(file: string, kind: ImageKind, buf: Uint8Array, what: string): [Uint8Array] {
  const entries = unframeImage(file, kind, buf);
  if (entries.length !== 1) {
    throw new ImageError('EDECODE', file, `holds ${entries.length} ${what} entries, expected exactly 1${entries.length > 1 ? ' (Cryopod restores one task)' : ''}`);
  }
  return [entries[0]];
}

/** The single entry of an image that must hold exactly one. */
export function single<T>(file: string, kind: ImageKind, buf: Uint8Array, type: Type, what: string): T {
  return decodeEntry<T>(file, what, type, singleEntry(file, kind, buf, what)[0]);
}

/** A path from an image, refused above the cap before anything uses it. */
export function checkPath(file: string, what: string, s: string): string {
  if (Buffer.byteLength(s) > MAX_PATH_BYTES) throw new ImageError('ETOOBIG', file, `${what} is over ${MAX_PATH_BYTES} bytes`);
  return s;
}
