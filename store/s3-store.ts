/**
 * The S3 backend (AWS S3, MinIO, any S3-compatible server), with the AWS SDK for JavaScript v3.
 *
 *   PREFIX/KEY/.cryopod-upload     written first: marks an upload (so a dead one is found as an orphan)
 *   PREFIX/KEY/<path>              one object per checkpoint file, encrypted when the store has a key
 *   PREFIX/KEY/cryopod-seal.json   written last, in plain: its presence means the checkpoint is complete
 *
 * Each file is streamed from disk into a multipart upload, each part's body read from its own byte range
 * of the file as it is sent (upload-parts.ts: parts in parallel, no part held in memory, never a second
 * copy on disk). Each object carries the file's sealed sha256 as
 * metadata, so an upload retried after a crash or an outage skips the files already stored whole. A
 * file that fails is retried from its start with backoff; objects are never read back before the seal.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type _Object,
} from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { SEAL_FILE } from '../images/seal';
import { parseSealText } from '../images/seal-verify';
import { newFileCipher, sealedLayout, type KeyRing } from './cipher';
import { StoreError } from './errors';
import type { ImageStore, S3Options, StoredCheckpoint, StoreOptions, TransferOptions } from './image-store';
import { checkKey } from './location';
import { withRetry } from './retry';
import { DecryptPool } from './decrypt-pool';
import { fetchRanged, Slots } from './fetch-file';
import { partBody, planParts } from './upload-parts';
import * as path from 'node:path';
import { decodeSmall, downloadBytes, isEncrypted, localCheckpoint, MAX_SEAL_BYTES, ProgressMeter, readCapped } from './transfer';
import { promises as fsp } from 'node:fs';

const UPLOAD_MARKER = '.cryopod-upload';
// Parts are streamed from the file (upload-parts.ts), so more in flight costs sockets, not memory: the
// agent stays near 105 MiB whatever these are (about 64 MiB of it is Node with the SDK loaded).
const DEFAULT_PART_BYTES = 8 << 20;
const DEFAULT_PARALLEL_PARTS = 4;
const DEFAULT_PARALLEL_GETS = 4;

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** An SDK error in words: HEAD responses have no body, so the SDK's own message can be just "UnknownError". */
function explain(err: unknown, what: string): unknown {
  if (err instanceof StoreError || !(err instanceof Error)) return err;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === undefined) return err;
  if (status === 401 || status === 403) {
    return new StoreError('Denied', `${what}: access denied (HTTP ${status}, ${err.name}): wrong credentials, or they lack permission on this bucket`, { cause: err });
  }
  return new StoreError('Unavailable', `${what}: HTTP ${status} ${err.name}: ${err.message}`, { cause: err });
}

export class S3ImageStore implements ImageStore {
  readonly url: string;
  readonly client: S3Client;
  private readonly keys?: KeyRing;
  private readonly retryForMs: number;
  private readonly partBytes: number;
  private readonly parallelParts: number;
  private readonly parallelGets: number;

  constructor(
    readonly bucket: string,
    readonly prefix: string,
    opts: StoreOptions = {},
  ) {
    const s3: S3Options = opts.s3 ?? {};
    this.url = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;
    this.keys = opts.keys;
    this.retryForMs = opts.retryForMs ?? 120_000;
    this.partBytes = Math.max(5 << 20, s3.partBytes ?? DEFAULT_PART_BYTES); // S3's minimum part size
    this.parallelParts = Math.max(1, s3.parallelParts ?? DEFAULT_PARALLEL_PARTS);
    this.parallelGets = Math.max(1, s3.parallelGets ?? DEFAULT_PARALLEL_GETS);
    this.client = new S3Client({
      region: s3.region ?? 'us-east-1',
      ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
      forcePathStyle: s3.forcePathStyle ?? s3.endpoint !== undefined,
      // Explicit credentials only: never the SDK's default chain (instance metadata, ~/.aws), so what a
      // node holds never leaks into a checkpoint's upload by accident.
      credentials: { accessKeyId: s3.accessKeyId ?? '', secretAccessKey: s3.secretAccessKey ?? '', ...(s3.sessionToken ? { sessionToken: s3.sessionToken } : {}) },
      // The SDK retries single requests quickly; withRetry below outlasts a server restart.
      maxAttempts: 3,
    });
  }

  get encryptionKeyId(): string | undefined {
    return this.keys?.current;
  }

  urlOf(key: string): string {
    return `${this.url}/${checkKey(key)}`;
  }

  private objectKey(key: string, file = ''): string {
    return `${this.prefix ? `${this.prefix}/` : ''}${checkKey(key)}/${file}`;
  }

  private async retry<T>(what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      return await withRetry(what, fn, { forMs: this.retryForMs, signal });
    } catch (err) {
      throw explain(err, what);
    }
  }

  async upload(key: string, localDir: string, opts: TransferOptions = {}): Promise<{ bytes: number }> {
    const local = await localCheckpoint(localDir, this.keys);
    if (await this.exists(key)) {
      throw new StoreError('Exists', `${this.urlOf(key)} is already published: checkpoints are immutable`);
    }
    await this.retry(`start of ${this.urlOf(key)}`, () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key, UPLOAD_MARKER), Body: '' })), opts.signal);
    // Multipart uploads a dead uploader left under this key (its parts cost storage and are never completed).
    await this.abortUploads(this.objectKey(key));
    const meter = new ProgressMeter(local.totalBytes, opts.onProgress);
    // A pages image of a v3 manifest is listed by its blake3 (images/manifest.ts): tagged so it is never '' nor taken for a sha256.
    const sha = new Map(local.seal.files.map((f) => [f.path, f.sha256 ?? `blake3:${f.blake3}`]));
    const keyId = this.keys?.current ?? '';
    for (const f of local.files) {
      const Key = this.objectKey(key, f.path);
      const meta = { 'cryopod-sha256': sha.get(f.path) ?? '', 'cryopod-key': keyId };
      await this.retry(`upload of ${Key}`, async () => {
        if (f.path !== SEAL_FILE && (await this.storedWhole(Key, meta).catch((err) => Promise.reject(explain(err, `check of ${Key}`))))) {
          meter.rewind(-f.size); // counted as done: an earlier try stored it
          return;
        }
        const before = meter.doneBytes;
        try {
          await this.putFile(Key, path.join(localDir, f.path), f.path, meta, isEncrypted(local.seal, f.path), meter, opts.signal);
        } catch (err) {
          meter.rewind(meter.doneBytes - before);
          throw err;
        }
      }, opts.signal);
    }
    return { bytes: local.totalBytes };
  }

  /**
   * One file as one object: a single PUT when it fits in a part, else a multipart upload whose parts are
   * streamed from their byte ranges of the file (upload-parts.ts), a few in flight; nothing is buffered.
   * A failure aborts the multipart upload (the caller retries the file from its start).
   */
  private async putFile(Key: string, file: string, name: string, Metadata: Record<string, string>, encrypt: boolean, meter: ProgressMeter, signal?: AbortSignal): Promise<void> {
    const { size } = await fsp.stat(file);
    const id = this.keys?.current;
    const cipher = encrypt && id ? newFileCipher(id, this.keys!.keys.get(id)!) : undefined;
    const parts = planParts(size, this.partBytes, cipher);
    const totalChunks = cipher ? sealedLayout(size, cipher).chunks : 0;
    const body = (p: (typeof parts)[number]): Readable => partBody(file, name, p, cipher, totalChunks);
    const common = { Bucket: this.bucket, Key };
    if (parts.length === 1) {
      await this.client.send(new PutObjectCommand({ ...common, Body: body(parts[0]), ContentLength: parts[0].length, Metadata, ContentType: 'application/octet-stream' }), { abortSignal: signal });
      meter.add(name, parts[0].plainBytes);
      meter.flush(name);
      return;
    }
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ ...common, Metadata, ContentType: 'application/octet-stream' }), { abortSignal: signal });
    try {
      const etags: string[] = new Array(parts.length);
      const slots = new Slots(this.parallelParts);
      let failure: unknown;
      await Promise.all(
        parts.map(async (p, i) => {
          await slots.acquire();
          try {
            if (failure !== undefined) return;
            const r = await this.client.send(new UploadPartCommand({ ...common, UploadId, PartNumber: i + 1, Body: body(p), ContentLength: p.length }), { abortSignal: signal });
            etags[i] = r.ETag!;
            meter.add(name, p.plainBytes);
          } catch (err) {
            failure ??= err;
          } finally {
            slots.release();
          }
        }),
      );
      if (failure !== undefined) throw failure;
      await this.client.send(new CompleteMultipartUploadCommand({ ...common, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }), { abortSignal: signal });
      meter.flush(name);
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ ...common, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  /** True when an object is there with the metadata of the file it should hold (stored by an earlier try). */
  private async storedWhole(Key: string, meta: Record<string, string>): Promise<boolean> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return head.Metadata?.['cryopod-sha256'] === meta['cryopod-sha256'] && head.Metadata?.['cryopod-key'] === meta['cryopod-key'] && meta['cryopod-sha256'] !== '';
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  private async getBody(Key: string): Promise<{ body: Readable; size: number }> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      return { body: r.Body as Readable, size: r.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) throw new StoreError('NotFound', `s3://${this.bucket}/${Key} does not exist`, { cause: err });
      throw err;
    }
  }

  private async readObject(Key: string, maxBytes: number): Promise<Buffer> {
    return this.retry(`read of ${Key}`, async () => {
      const { body, size } = await this.getBody(Key);
      if (size > maxBytes) {
        body.destroy();
        throw new StoreError('BadLocation', `s3://${this.bucket}/${Key} is ${size} bytes, over ${maxBytes}`);
      }
      return readCapped(body, maxBytes, `s3://${this.bucket}/${Key}`);
    });
  }

  private async objectsOf(prefix: string): Promise<_Object[]> {
    const out: _Object[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.retry(`list of ${prefix}`, () => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken })));
      out.push(...(page.Contents ?? []));
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out;
  }

  async download(key: string, localDir: string, opts: TransferOptions = {}): Promise<{ bytes: number }> {
    const base = this.objectKey(key);
    const sealText = await this.readObject(base + SEAL_FILE, MAX_SEAL_BYTES);
    const seal = parseSealText(sealText.toString('utf8'));
    const objects = (await this.objectsOf(base)).filter((o) => o.Key && !o.Key.slice(base.length).startsWith('.'));
    await fsp.mkdir(localDir, { recursive: true, mode: 0o700 });
    if ((await fsp.readdir(localDir)).length) throw new StoreError('BadLocation', `download target ${localDir} is not empty`);
    const meter = new ProgressMeter(downloadBytes(seal, sealText.length), opts.onProgress);
    // A few files at once, each one GET streamed into place, decrypted on worker threads (fetch-file.ts):
    // the large pages images dominate, the many small files overlap their latency.
    const slots = new Slots(this.parallelGets);
    let pool: DecryptPool | undefined;
    const decrypting = { ring: this.keys, pool: () => (pool ??= new DecryptPool()) };
    try {
      await Promise.all(
        objects.map((o) => {
          const file = o.Key!.slice(base.length);
          return fetchRanged({ name: file, size: o.Size ?? 0, get: (start, end) => this.getRange(o.Key!, start, end, opts.signal) }, localDir, {
            rangeBytes: this.partBytes,
            slots,
            meter,
            ...(isEncrypted(seal, file) ? { decrypt: decrypting } : {}),
            retry: (what, fn) => this.retry(what, fn, opts.signal),
          });
        }),
      );
    } finally {
      await pool?.close();
    }
    return { bytes: meter.doneBytes };
  }

  /** Bytes [start, end) of an object, as a stream. */
  private async getRange(Key: string, start: number, end: number, signal?: AbortSignal): Promise<Readable> {
    if (end <= start) return Readable.from([]);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, Range: `bytes=${start}-${end - 1}` }), { abortSignal: signal });
      return r.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new StoreError('NotFound', `s3://${this.bucket}/${Key} does not exist`, { cause: err });
      throw err;
    }
  }

  async readFile(key: string, name: string, maxBytes = 1 << 20): Promise<Buffer> {
    const base = this.objectKey(key);
    const seal = parseSealText((await this.readObject(base + SEAL_FILE, MAX_SEAL_BYTES)).toString('utf8'));
    const raw = await this.readObject(base + name, maxBytes + 4096);
    const plain = await decodeSmall(raw, name, this.keys, isEncrypted(seal, name));
    if (plain.length > maxBytes) throw new StoreError('BadLocation', `${this.urlOf(key)}/${name} is over ${maxBytes} bytes`);
    return plain;
  }

  async exists(key: string): Promise<boolean> {
    return this.retry(`check of ${this.urlOf(key)}`, () => this.headSeal(key));
  }

  private async headSeal(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key, SEAL_FILE) }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async list(under = ''): Promise<StoredCheckpoint[]> {
    const root = this.prefix ? `${this.prefix}/` : '';
    const objects = await this.objectsOf(under ? `${root}${checkKey(under)}/` : root);
    const byKey = new Map<string, { complete: boolean; marked: boolean; modified: Date }>();
    // A checkpoint is where a seal or an upload marker is; its key is the path above that object.
    for (const o of objects) {
      const rel = o.Key!.slice(root.length);
      const name = rel.slice(rel.lastIndexOf('/') + 1);
      if (name !== SEAL_FILE && name !== UPLOAD_MARKER) continue;
      const key = rel.slice(0, rel.lastIndexOf('/'));
      if (key === '') continue;
      const e = byKey.get(key) ?? { complete: false, marked: false, modified: new Date(0) };
      if (name === SEAL_FILE) e.complete = true;
      else e.marked = true;
      byKey.set(key, e);
    }
    for (const o of objects) {
      const rel = o.Key!.slice(root.length);
      for (const [key, e] of byKey) if (rel.startsWith(`${key}/`) && o.LastModified && o.LastModified > e.modified) e.modified = o.LastModified;
    }
    return [...byKey].map(([key, e]) => ({ key, url: this.urlOf(key), complete: e.complete, modified: e.modified })).sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  async remove(key: string): Promise<'removed' | 'absent'> {
    const base = this.objectKey(key);
    const objects = await this.objectsOf(base);
    // The seal first: from then on no reader takes the checkpoint for complete while the rest goes.
    const seal = objects.filter((o) => o.Key === base + SEAL_FILE);
    const rest = objects.filter((o) => o.Key !== base + SEAL_FILE);
    for (const group of [seal, rest]) {
      for (let i = 0; i < group.length; i += 1000) {
        const batch = group.slice(i, i + 1000).map((o) => ({ Key: o.Key! }));
        const r = await this.retry(`delete under ${base}`, () => this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch, Quiet: true } })));
        if (r.Errors?.length) throw new StoreError('Unavailable', `could not delete ${r.Errors.length} objects under s3://${this.bucket}/${base}: ${r.Errors[0].Code} ${r.Errors[0].Message}`);
      }
    }
    // Parts of multipart uploads that died (a killed agent) are invisible to listings but cost storage.
    const aborted = await this.abortUploads(base);
    return objects.length || aborted ? 'removed' : 'absent';
  }

  /** Aborts every multipart upload under a key prefix; returns how many there were. */
  private async abortUploads(prefix: string): Promise<number> {
    const uploads = await this.retry(`list of uploads under ${prefix}`, () => this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix })));
    for (const u of uploads.Uploads ?? []) {
      await this.retry(`abort of ${u.Key}`, () => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key!, UploadId: u.UploadId! })));
    }
    return uploads.Uploads?.length ?? 0;
  }
}
