/**
 * What both backends do with a checkpoint's files: read a local file and encode it for the store
 * (encrypted when the store has a write key), and count progress. Everything streams: memory stays at a
 * chunk or a few, whatever the file's size. (Downloads: ranged-get.ts.)
 */
import { createReadStream } from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { listTree, SEAL_FILE, type Seal } from '../images/seal';
import { parseSealText } from '../images/seal-verify';
import { decryptor, encryptor, type KeyRing } from './cipher';
import { StoreError } from './errors';
import type { Progress } from './image-store';

export const MAX_SEAL_BYTES = 4 * 1024 * 1024;

export interface LocalCheckpoint {
  seal: Seal;
  /** Every file but the seal, then the seal (published last: it marks the checkpoint complete). */
  files: Array<{ path: string; size: number }>;
  totalBytes: number;
}

/** A sealed local tree ready to upload; refuses an unsealed one and a seal naming another encryption key. */
export async function localCheckpoint(dir: string, keys: KeyRing | undefined): Promise<LocalCheckpoint> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(dir, SEAL_FILE), 'utf8');
  } catch (err) {
    throw new StoreError('NotFound', `${dir} has no ${SEAL_FILE}: seal a checkpoint (images/seal.ts sealCheckpoint) before uploading it`, { cause: err });
  }
  const seal = parseSealText(text);
  const want = keys?.current;
  if ((seal.encryption?.keyId ?? undefined) !== want) {
    throw new StoreError('BadLocation', `${dir}: the seal says encryption key ${seal.encryption?.keyId ?? '(none)'}, the store writes with ${want ?? '(no encryption)'}: seal it with the store's encryptionKeyId`);
  }
  const tree = await listTree(dir);
  const files = [...tree.filter((f) => f.path !== SEAL_FILE), ...tree.filter((f) => f.path === SEAL_FILE)];
  return { seal, files, totalBytes: files.reduce((n, f) => n + f.size, 0) };
}

/** The plain bytes a download writes: every sealed file, and the seal itself. */
export function downloadBytes(seal: Pick<Seal, 'files'>, sealBytes: number): number {
  return seal.files.reduce((n, f) => n + f.size, 0) + sealBytes;
}

/** Whether a stored file is encrypted: all but the seal, when the seal names a key. */
export function isEncrypted(seal: Pick<Seal, 'encryption'>, file: string): boolean {
  return seal.encryption !== undefined && file !== SEAL_FILE;
}

/** Counts plain bytes as they pass and reports progress at most every 4 MiB (and at each file's end). */
export class ProgressMeter {
  private done = 0;
  private reported = 0;
  constructor(
    private readonly total: number,
    private readonly onProgress?: (p: Progress) => void,
  ) {}

  counter(file: string): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.done += chunk.length;
        if (this.done - this.reported >= 4 << 20) this.report(file);
        cb(null, chunk);
      },
      flush: (cb) => {
        this.report(file);
        cb();
      },
    });
  }

  /** Counts bytes moved outside a stream (a range written in place), reporting as counter() does. */
  add(file: string, bytes: number): void {
    this.done += bytes;
    if (this.done - this.reported >= 4 << 20) this.report(file);
  }

  /** Reports where things stand (at the end of a file). */
  flush(file: string): void {
    this.report(file);
  }

  /** Takes back a failed try's bytes, so a retried file is not counted twice. */
  rewind(bytes: number): void {
    this.done -= bytes;
  }

  get doneBytes(): number {
    return this.done;
  }

  private report(file: string): void {
    this.reported = this.done;
    this.onProgress?.({ doneBytes: this.done, totalBytes: this.total, file });
  }
}

/** A local file as the store keeps it: read, counted, and encrypted when `keyId` is given. */
export function encodedStream(dir: string, file: string, meter: ProgressMeter, keys: KeyRing | undefined, encrypt: boolean): Readable {
  const src = createReadStream(path.join(dir, file), { highWaterMark: 1 << 20 });
  const counted = src.pipe(meter.counter(file));
  src.on('error', (err) => counted.destroy(err));
  if (!encrypt) return counted;
  const id = keys!.current!;
  return Readable.from(encryptor(id, keys!.keys.get(id)!, file)(counted));
}

/** Reads a whole small stream, refusing more than max bytes. */
export async function readCapped(source: AsyncIterable<Buffer | Uint8Array>, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const p of source) {
    n += p.length;
    if (n > max) throw new StoreError('BadLocation', `${what} is over ${max} bytes: refusing to read it into memory`);
    parts.push(Buffer.from(p));
  }
  return Buffer.concat(parts, n);
}

/** Decrypts a whole small buffer (pod.json) when the seal says it is encrypted. */
export async function decodeSmall(buf: Buffer, file: string, keys: KeyRing | undefined, decrypt: boolean): Promise<Buffer> {
  if (!decrypt) return buf;
  return readCapped(decryptor(keys, file)((async function* () { yield buf; })()), buf.length, file);
}
