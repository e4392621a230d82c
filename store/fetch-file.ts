/**
 * A stored file fetched into a new local file, as cheaply per byte as the plain SDK get, decrypted off
 * the event loop:
 *
 *   plain        one GET streamed in; pieces gathered into ~1 MiB writev calls at their offset (no copy)
 *   encrypted    [hdr][c0+tag][c1+tag]...[cN+tag, short]
 *                a tiny GET of the header (key id, key check: a wrong key fails before the body is asked
 *                for), then one GET of the chunks, gathered into runs of whole chunks that the worker pool
 *                (decrypt-pool.ts) opens and writes with pwrite at chunk index x chunk size, while the
 *                next run arrives
 *
 * Where the chunks are follows from the stored size alone (cipher.ts chunkLayout), so a file cut short is
 * refused before its body is fetched. A retry (retry.ts) asks only for the bytes not yet written (Range).
 * Measured on this 2-core machine (docs/performance.md): ranged GETs in parallel did not beat one stream
 * per file (MinIO and the client share the same cores), so a few files are fetched at once (Slots), each
 * as one stream.
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { chunkLayout, MAX_HEADER_BYTES, openHeader, TAG_BYTES, type KeyRing } from './cipher';
import type { DecryptPool } from './decrypt-pool';
import { StoreError } from './errors';
import { createInside } from './safe-fs';
import type { ProgressMeter } from './transfer';

/** A counting semaphore: how many files are fetched at once in one download. */
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
  /** Plain bytes per run of chunks handed to a decrypting worker. */
  rangeBytes: number;
  slots: Slots;
  meter: ProgressMeter;
  /** Set for an encrypted file: the keys, and the pool that decrypts (made on first use). */
  decrypt?: { ring: KeyRing | undefined; pool: () => DecryptPool };
  /** Runs one fetch with the store's retries. */
  retry<T>(what: string, fn: () => Promise<T>): Promise<T>;
}

/** Reads bytes [start, end) into one buffer that owns its memory (the header of an encrypted file). */
async function readRange(file: RangedFile, start: number, end: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafeSlow(end - start);
  let n = 0;
  for await (const piece of await file.get(start, end)) {
    if (n + piece.length > buf.length) throw new StoreError('Unavailable', `${file.name}: the store sent more than bytes ${start}-${end - 1}`);
    buf.set(piece, n);
    n += piece.length;
  }
  if (n !== buf.length) throw cutShort(file, start, end, n);
  return buf;
}

/** A body that ended early is a cut connection (or an object replaced meanwhile): worth another try, from where it stopped. */
function cutShort(file: RangedFile, start: number, end: number, got: number): Error {
  return Object.assign(new Error(`${file.name}: bytes ${start}-${end - 1} ended after ${got} bytes`), { code: 'ECONNRESET' });
}

/**
 * A plain file: one GET piped into a write stream on the file, as the plain SDK get does; progress is
 * counted as bytes pass. A retry asks only for the bytes the file has (Range from there).
 */
async function fetchPlain(file: RangedFile, fh: FileHandle, opts: RangedOptions, count: (n: number) => void): Promise<void> {
  let written = 0;
  await opts.retry(`download of ${file.name}`, async () => {
    const body = await file.get(written, file.size);
    // On the bare descriptor: the handle stays ours (fetchRanged syncs and closes it; a stream made by
    // fh.createWriteStream would hold it until the stream closes), and with no 'close' coming the pipeline
    // ends on 'finish'.
    const out = createWriteStream('', { fd: fh.fd, start: written, autoClose: false, emitClose: false, highWaterMark: 1 << 20 });
    let passed = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        passed += chunk.length;
        if (written + passed > file.size) return cb(new StoreError('Unavailable', `${file.name}: the store sent more than its ${file.size} bytes`));
        count(chunk.length);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(body as AsyncIterable<Uint8Array>, counted, out);
    } finally {
      // What reached the file stays; what was counted but not written is taken back.
      count(out.bytesWritten - passed);
      written += out.bytesWritten;
    }
    if (written !== file.size) throw cutShort(file, 0, file.size, written);
  });
}

/**
 * An encrypted file: its header (a tiny GET: key id, key check), then one GET of its sealed chunks,
 * gathered into runs of whole chunks that the worker pool opens and writes while the next run arrives (as
 * two runs in flight per thread of the pool). A retry asks again from the first run not yet written.
 */
async function fetchEncrypted(file: RangedFile, fh: FileHandle, opts: RangedOptions, count: (n: number) => void): Promise<void> {
  const { ring, pool } = opts.decrypt!;
  const head = await opts.retry(`download of ${file.name} (header)`, () => readRange(file, 0, Math.min(file.size, MAX_HEADER_BYTES)));
  const opened = openHeader(ring, file.name, head);
  if (opened === undefined) throw new StoreError('Decrypt', `${file.name} is cut short inside its encryption header`);
  const layout = chunkLayout(file.name, file.size, opened);
  const sealedChunk = opened.chunkBytes + TAG_BYTES;
  const perRun = Math.max(1, Math.floor(opts.rangeBytes / opened.chunkBytes));
  const lastIndex = layout.chunks - 1;
  const offsetOf = (chunk: number): number => opened.header.length + chunk * sealedChunk;
  const plainOf = (first: number, n: number): number => Math.min(layout.plainBytes, (first + n) * opened.chunkBytes) - first * opened.chunkBytes;
  let confirmed = 0; // every chunk before this one is written
  await opts.retry(`download of ${file.name}`, async () => {
    const inFlight: Array<{ first: number; n: number; done: Promise<void> }> = [];
    // Runs finish in any order; `confirmed` moves only over the ones finished in a row from the oldest.
    const settleOldest = async (): Promise<void> => {
      const job = inFlight.shift()!;
      await job.done;
      confirmed = job.first + job.n;
      count(plainOf(job.first, job.n));
    };
    let first = confirmed;
    if (first >= layout.chunks) return;
    const start = offsetOf(first);
    try {
      const body = await file.get(start, file.size);
      let run = Buffer.allocUnsafeSlow(Math.min(perRun * sealedChunk, file.size - offsetOf(first)));
      let fill = 0;
      let received = start;
      for await (const raw of body) {
        let piece = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
        received += piece.length;
        if (received > file.size) throw new StoreError('Unavailable', `${file.name}: the store sent more than its ${file.size} bytes`);
        while (piece.length) {
          const take = Math.min(piece.length, run.length - fill);
          piece.copy(run, fill, 0, take);
          fill += take;
          piece = piece.subarray(take);
          if (fill === run.length) {
            const n = Math.min(perRun, layout.chunks - first);
            inFlight.push({ first, n, done: pool().run({ fd: fh.fd, name: file.name, opened, sealed: run, firstIndex: first, count: n, lastIndex, plainOffset: first * opened.chunkBytes }) });
            first += n;
            // Two runs per thread: one being opened, one waiting, so reading the socket never waits on a worker.
            if (inFlight.length >= 2 * pool().threads) await settleOldest();
            if (first < layout.chunks) run = Buffer.allocUnsafeSlow(Math.min(perRun * sealedChunk, file.size - offsetOf(first)));
            fill = 0;
          }
        }
      }
      if (first < layout.chunks) throw cutShort(file, start, file.size, received - start);
    } finally {
      // Every run handed out is waited for, also when the stream failed: none may write once the file is closed.
      const results = await Promise.allSettled(inFlight.map((j) => j.done));
      const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (bad) throw bad.reason;
      while (inFlight.length) await settleOldest();
    }
  });
}

/**
 * Fetches one stored file into localDir/name (a new file, 0600), decrypting when asked. Resolves once
 * every byte is written; on failure nothing of it is left.
 */
export async function fetchRanged(file: RangedFile, localDir: string, opts: RangedOptions): Promise<void> {
  const fh = await createInside(localDir, file.name);
  let counted = 0;
  const count = (n: number): void => {
    counted += n;
    opts.meter.add(file.name, n);
  };
  try {
    await opts.slots.acquire();
    try {
      if (opts.decrypt) await fetchEncrypted(file, fh, opts, count);
      else await fetchPlain(file, fh, opts, count);
    } finally {
      opts.slots.release();
    }
    // No fsync: a download is a staging copy the restore reads at once, and a restore cut by a crash is
    // not resumed (its copy is removed), so the bytes need not reach the disk first.
    opts.meter.flush(file.name);
  } catch (err) {
    opts.meter.rewind(counted);
    await fh.close().catch(() => undefined);
    await fsp.rm(path.join(localDir, file.name), { force: true });
    throw err;
  }
  await fh.close();
}
