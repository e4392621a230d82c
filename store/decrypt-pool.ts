/**
 * Decryption off the event loop: a few worker threads (one per core) that each take a run of sealed
 * chunks of one file (gathered by fetch-file.ts, its memory transferred, not copied), open
 * them (AES-256-GCM, cipher.ts's nonce and additional data) and write the plain bytes at their place in
 * the local file with pwrite. The thread that fetches goes on receiving the next run meanwhile.
 *
 *   main thread:   GET body ──► run of chunks i..j ──postMessage(transfer)──► worker: open each ──► pwrite(fd, at i*C)
 *
 * A chunk that fails authentication comes back as its index, and is reported with the same words as the
 * streaming decryptor (cipher.ts openChunk).
 */
import { Worker } from 'node:worker_threads';
import * as os from 'node:os';
import { aad, nonce, TAG_BYTES, type OpenedHeader } from './cipher';
import { StoreError } from './errors';

// Plain JavaScript so that it runs the same under ts-jest and from dist/; nonce and aad are cipher.ts's own
// functions (their compiled source), so the layout of a chunk is written down once.
const WORKER = `
const { parentPort } = require('worker_threads');
const fs = require('fs');
const crypto = require('crypto');
const nonce = ${nonce.toString()};
const aad = ${aad.toString()};
const TAG = ${TAG_BYTES};
parentPort.on('message', (m) => {
  const buf = Buffer.from(m.buf);
  const header = Buffer.from(m.header);
  const key = Buffer.from(m.key);
  let pos = 0;
  let index = m.firstIndex;
  try {
    for (let i = 0; i < m.count; i++, index++) {
      const last = index === m.lastIndex;
      const len = last ? buf.length - pos : m.chunkBytes + TAG;
      const sealed = buf.subarray(pos, pos + len);
      pos += len;
      const d = crypto.createDecipheriv('aes-256-gcm', key, nonce(index));
      d.setAAD(aad(header, m.name, index, last));
      d.setAuthTag(sealed.subarray(len - TAG));
      let plain;
      try {
        plain = Buffer.concat([d.update(sealed.subarray(0, len - TAG)), d.final()]);
      } catch (err) {
        parentPort.postMessage({ id: m.id, badChunk: index });
        return;
      }
      let off = 0;
      while (off < plain.length) off += fs.writeSync(m.fd, plain, off, plain.length - off, m.plainOffset + i * m.chunkBytes + off);
    }
    parentPort.postMessage({ id: m.id });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message), code: err && err.code });
  }
});`;

export interface DecryptJob {
  /** The file's descriptor, open for writing (shared by the process's threads). */
  fd: number;
  name: string;
  opened: OpenedHeader;
  /** The sealed chunks firstIndex .. firstIndex+count-1, back to back; the pool takes the memory. */
  sealed: Buffer;
  firstIndex: number;
  count: number;
  /** The index of the file's last chunk (sealed with the last flag). */
  lastIndex: number;
  /** Where chunk firstIndex's plain bytes go in the file. */
  plainOffset: number;
}

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
  name: string;
}

export class DecryptPool {
  private readonly workers: Worker[];
  private readonly idle: Worker[];
  private readonly waiting: Array<() => void> = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private broken?: Error;

  constructor(threads = Math.max(1, Math.min(os.cpus().length, 4))) {
    this.workers = Array.from({ length: threads }, () => this.spawn());
    this.idle = [...this.workers];
  }

  get threads(): number {
    return this.workers.length;
  }

  private spawn(): Worker {
    const w = new Worker(WORKER, { eval: true });
    w.on('message', (m: { id: number; badChunk?: number; error?: string; code?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      this.release(w);
      if (!p) return;
      if (m.badChunk !== undefined) p.reject(new StoreError('Decrypt', `${p.name}: chunk ${m.badChunk} fails authentication: the stored bytes were altered, reordered or cut short`));
      else if (m.error !== undefined) p.reject(Object.assign(new Error(`${p.name}: writing the decrypted bytes failed: ${m.error}`), { code: m.code }));
      else p.resolve();
    });
    w.on('error', (err) => {
      this.broken = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
    return w;
  }

  private release(w: Worker): void {
    this.idle.push(w);
    this.waiting.shift()?.();
  }

  private async take(): Promise<Worker> {
    while (this.idle.length === 0) await new Promise<void>((r) => this.waiting.push(r));
    return this.idle.pop()!;
  }

  /** Decrypts and writes one run of chunks; resolves once its bytes are written. */
  async run(job: DecryptJob): Promise<void> {
    if (this.broken) throw this.broken;
    const w = await this.take();
    const id = this.nextId++;
    // The worker gets the memory itself: a Buffer that owns its whole ArrayBuffer is transferred, any other is copied once.
    const own = job.sealed.byteOffset === 0 && job.sealed.byteLength === job.sealed.buffer.byteLength ? job.sealed : Buffer.from(job.sealed);
    const ab = own.buffer as ArrayBuffer;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, name: job.name });
      w.postMessage(
        { id, fd: job.fd, name: job.name, header: job.opened.header, key: job.opened.key, buf: ab, firstIndex: job.firstIndex, count: job.count, lastIndex: job.lastIndex, chunkBytes: job.opened.chunkBytes, plainOffset: job.plainOffset },
        [ab],
      );
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
