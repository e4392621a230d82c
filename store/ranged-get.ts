/**
 * A stored file fetched as byte ranges in parallel, each written at its place in a new local file
 * (pwrite), so one slow stream does not decide the download and nothing is staged twice:
 *
 *   stored file   [ range 0 ][ range 1 ][ range 2 ] ...      GET Range: bytes=a-b, a few in flight (Slots)
 *   plain         written as it is                           pwrite at a
 *   encrypted     [hdr][c0+tag][c1+tag]...[cN+tag, short]    the header first (tiny GET: key id, key check),
 *                                                            then ranges of whole sealed chunks, each opened
 *                                                            and written by a worker (decrypt-pool.ts) at
 *                                                            chunk index x chunk size
 *
 * Where the chunks are follows from the stored size alone (cipher.ts chunkLayout), so a file cut short is
 * refused before a byte is fetched. Each range is retried on its own (retry.ts); the first error that is
 * not transient fails the file, the ranges in flight are waited for, and the partial file is removed.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { chunkLayout, MAX_HEADER_BYTES, openHeader, TAG_BYTES, type KeyRing } from './cipher';
import type { DecryptPool } from './decrypt-pool';
import { StoreError } from './errors';
import { createInside } from './safe-fs';
import type { ProgressMeter } from './transfer';

/** A counting semaphore: how many ranges are in flight across every file of one download. */
export class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];
  constructor(n: number) {
    this.free = n;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

export interface RangedFile {
  /** The file's path in the checkpoint (names the file in errors, binds the cipher's chunks). */
  name: string;
  /** Bytes stored (encrypted size when encrypted). */
  size: number;
  /** Bytes [start, end) of the stored file. */
  get(start: number, end: number): Promise<AsyncIterable<Uint8Array> | Iterable<Uint8Array>>;
}

export interface RangedOptions {
  rangeBytes: number;
  slots: Slots;
  meter: ProgressMeter;
  /** Set for an encrypted file: the keys, and the pool that decrypts (made on first use). */
  decrypt?: { ring: KeyRing | undefined; pool: () => DecryptPool };
  /** Runs one range's fetch with the store's retries. */
  retry<T>(what: string, fn: () => Promise<T>): Promise<T>;
}

/** Reads bytes [start, end) into one buffer that owns its memory (so a worker can take it whole). */
async function readRange(file: RangedFile, start: number, end: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafeSlow(end - start);
  let n = 0;
  for await (const piece of await file.get(start, end)) {
    if (n + piece.length > buf.length) throw new StoreError('Unavailable', `${file.name}: the store sent more than bytes ${start}-${end - 1}`);
    buf.set(piece, n);
    n += piece.length;
  }
  // A short body is a cut connection (or an object replaced meanwhile): worth another try.
  if (n !== buf.length) throw Object.assign(new Error(`${file.name}: bytes ${start}-${end - 1} ended after ${n} bytes`), { code: 'ECONNRESET' });
  return buf;
}

async function writeAt(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}

/** The work of one file: a list of range tasks, run through the shared slots. */
type Task = () => Promise<void>;

function plainTasks(file: RangedFile, fh: FileHandle, opts: RangedOptions, count: (n: number) => void): Task[] {
  const tasks: Task[] = [];
  for (let start = 0; start < file.size; start += opts.rangeBytes) {
    const end = Math.min(file.size, start + opts.rangeBytes);
    tasks.push(async () => {
      const buf = await opts.retry(`download of ${file.name} bytes ${start}-${end - 1}`, () => readRange(file, start, end));
      await writeAt(fh, buf, start);
      count(buf.length);
    });
  }
  return tasks;
}

async function encryptedTasks(file: RangedFile, fh: FileHandle, opts: RangedOptions, count: (n: number) => void): Promise<Task[]> {
  const { ring, pool } = opts.decrypt!;
  const head = await opts.retry(`download of ${file.name} (header)`, () => readRange(file, 0, Math.min(file.size, MAX_HEADER_BYTES)));
  const opened = openHeader(ring, file.name, head);
  if (opened === undefined) throw new StoreError('Decrypt', `${file.name} is cut short inside its encryption header`);
  const layout = chunkLayout(file.name, file.size, opened);
  const sealedChunk = opened.chunkBytes + TAG_BYTES;
  const perRange = Math.max(1, Math.floor(opts.rangeBytes / opened.chunkBytes));
  const lastIndex = layout.chunks - 1;
  const tasks: Task[] = [];
  for (let first = 0; first < layout.chunks; first += perRange) {
    const n = Math.min(perRange, layout.chunks - first);
    const start = opened.header.length + first * sealedChunk;
    const end = Math.min(file.size, start + n * sealedChunk);
    const plainOffset = first * opened.chunkBytes;
    const plainBytes = Math.min(layout.plainBytes, plainOffset + n * opened.chunkBytes) - plainOffset;
    tasks.push(async () => {
      const sealed = await opts.retry(`download of ${file.name} bytes ${start}-${end - 1}`, () => readRange(file, start, end));
      await pool().run({ fd: fh.fd, name: file.name, opened, sealed, firstIndex: first, count: n, lastIndex, plainOffset });
      count(plainBytes);
    });
  }
  return tasks;
}

/**
 * Fetches one stored file into localDir/name (a new file, 0600), decrypting when asked. Resolves once
 * every byte is written and fsynced; on failure nothing of it is left.
 */
export async function fetchRanged(file: RangedFile, localDir: string, opts: RangedOptions): Promise<void> {
  const fh = await createInside(localDir, file.name);
  let counted = 0;
  const count = (n: number): void => {
    counted += n;
    opts.meter.add(file.name, n);
  };
  let failure: unknown;
  try {
    await opts.slots.acquire();
    let tasks: Task[];
    try {
      tasks = opts.decrypt ? await encryptedTasks(file, fh, opts, count) : plainTasks(file, fh, opts, count);
    } finally {
      opts.slots.release();
    }
    // Every task is waited for, also after a failure: none may write into the file once it is closed.
    await Promise.all(
      tasks.map(async (task) => {
        await opts.slots.acquire();
        try {
          if (failure === undefined) await task();
        } catch (err) {
          failure ??= err;
        } finally {
          opts.slots.release();
        }
      }),
    );
    if (failure !== undefined) throw failure;
    await fh.sync();
    opts.meter.flush(file.name);
  } catch (err) {
    opts.meter.rewind(counted);
    await fh.close().catch(() => undefined);
    await fsp.rm(path.join(localDir, file.name), { force: true });
    throw err;
  }
  await fh.close();
}
