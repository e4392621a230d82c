/**
 * The checkpoint manifest, cryopod-manifest.json: what the checkpoint is (format version, task) and
 * the size and sha256 of every other file in the directory. It is written last, atomically (temp file
 * + rename), so its presence means the checkpoint is complete; a restore verifies every file against
 * it before it decodes a single image, and before the restored task runs a single instruction (the pages
 * images may be verified by the native fill as it writes them into the stopped stub: read.ts).
 *
 * Version 3: pages images carry a BLAKE3 digest (`blake3`, always chunked) instead of a sha256. The dump
 * hashes them in flight (native/src/core/image_hash.h) and BLAKE3 costs ~0.16 s of one core per GiB
 * here against ~0.56 s for sha256 with SHA-NI, which a restore pays on every byte too. Every other file
 * keeps its sha256. The seal (seal.ts) signs this manifest, so either hash stays authenticated.
 *
 * Version 4: a pages image's chunks are 1 MiB (PAGES_CHUNK_BYTES, 32 MiB before) and its entry lists every
 * chunk's BLAKE3 as well (`chunkBlake3`, hex, 64 digits per chunk), so a lazy restore can verify the one
 * chunk a page fault needs on its own. The root (`blake3`) is still the BLAKE3 of those digests in order:
 * whoever uses the list checks it against the root first (native/src/core/lazy_pager.h), so the root the
 * seal signs covers every chunk digest too, and the eager fill checks the root as before.
 */

import { createHash } from 'crypto';
import * as os from 'os';
import { Worker } from 'worker_threads';
import { createReadStream, promises as fsp } from 'fs';
import * as path from 'path';
import { ImageError } from './errors';
import { MAX_IMAGE_BYTES, MAX_MANIFEST_BYTES, MAX_MANIFEST_FILES } from './limits';
import { MANIFEST_FILE } from './magic';

export const MANIFEST_FORMAT = 'cryopod-checkpoint';
/** Bump when a reader of the previous version would misread a checkpoint of the new one. */
export const MANIFEST_VERSION = 4;
/**
 * Versions this reader accepts: 1 (whole-file sha256 only), 2 (large files hashed in chunks), 3 (BLAKE3
 * pages), 4 (per-chunk BLAKE3 digests of the pages images).
 */
const READABLE_VERSIONS = [1, 2, 3, 4];
/**
 * Files larger than this are hashed in chunks of this size, on every core at once; their sha256 is then
 * the sha256 of the chunks' digests, in order (a one-level hash tree), and the entry says `chunkBytes`.
 * Chunks let several cores hash one file at once: the verifier here (every file but the pages images, or
 * all of them when asked) and the native fill, which hashes each pages image chunk by chunk as it writes it
 * into the restored task, which runs only once every chunk matched.
 */
export const HASH_CHUNK_BYTES = 32 * 1024 * 1024;
/**
 * The chunks of a pages image (version 4): small enough that a lazy restore's first touch of a chunk
 * (read it, BLAKE3 it, copy it in) costs ~0.3 ms here, large enough that the list of their digests stays
 * small (64 hex digits per MiB: 256 KiB of manifest for 4 GiB of pages) and the eager fill's units cheap.
 */
export const PAGES_CHUNK_BYTES = 1024 * 1024;

/** How a file is hashed: exactly one of sha256 and blake3, lower-case hex. */
export interface FileDigest {
  sha256?: string;
  /** Version 3, pages images: always over chunk digests (chunkBytes is set). */
  blake3?: string;
  /** Set when the hash is over the file's chunk digests (chunks of this many bytes). */
  chunkBytes?: number;
  /** Version 4, pages images: every chunk's BLAKE3, lower-case hex, 64 digits each, in order. */
  chunkBlake3?: string;
}

export interface ManifestFile extends FileDigest {
  /** A plain file name inside the checkpoint directory. */
  name: string;
  size: number;
}

export type HashAlgorithm = 'sha256' | 'blake3';

/** The algorithm and hex of a digest (one of the two is set: parseManifest and the seal's reader see to it). */
export function digestOf(d: FileDigest): { algorithm: HashAlgorithm; hex: string } {
  return d.blake3 !== undefined ? { algorithm: 'blake3', hex: d.blake3 } : { algorithm: 'sha256', hex: d.sha256 ?? '' };
}

/** Whether two listings of a file promise the same bytes the same way. */
export function sameDigest(a: FileDigest, b: FileDigest): boolean {
  return a.sha256 === b.sha256 && a.blake3 === b.blake3 && (a.chunkBytes ?? 0) === (b.chunkBytes ?? 0);
}

/** Hashes a file as `d` lists it (same algorithm and chunks), for comparison with it. */
export async function hashFileAs(file: string, d: FileDigest): Promise<string> {
  if (d.blake3 === undefined) return hashFile(file, d.chunkBytes);
  // BLAKE3 in the native addon (the same code the dump and the fill run); loaded only when needed.
  const { hashFileChunked } = await import('../native/lib');
  return hashFileChunked(file, 'blake3', d.chunkBytes ?? HASH_CHUNK_BYTES);
}

/** The BLAKE3 root and every chunk's digest (hex, concatenated) of a file, in chunks of chunkBytes. */
export async function hashFileChunks(file: string, chunkBytes: number): Promise<{ root: string; chunks: string }> {
  const { hashFileWithChunks } = await import('../native/lib');
  return hashFileWithChunks(file, chunkBytes);
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: number;
  pid: number;
  comm: string;
  /** ISO 8601, UTC. */
  createdAt: string;
  /** Seconds the task was frozen for the dump (DumpedTask.frozenSeconds). */
  frozenSeconds: number;
  files: ManifestFile[];
}

const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export function sha256Of(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Streams a file through sha256 (version 1 entries, and small files). */
async function hashWhole(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

// The worker hashing one chunk: plain JavaScript, so it runs the same from ts-jest and from dist/.
const CHUNK_WORKER = `
const { parentPort } = require('worker_threads');
const fs = require('fs');
const crypto = require('crypto');
parentPort.on('message', ({ file, offset, length, index }) => {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(Math.min(length, 4 << 20));
  const hash = crypto.createHash('sha256');
  let pos = offset, left = length;
  try {
    while (left > 0) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, left), pos);
      if (n <= 0) break;
      hash.update(buf.subarray(0, n));
      pos += n;
      left -= n;
    }
  } finally {
    fs.closeSync(fd);
  }
  parentPort.postMessage({ index, digest: hash.digest() });
});`;

/** sha256 over the chunk digests of a file, the chunks hashed on every core at once. */
async function hashChunked(file: string, size: number, chunkBytes: number): Promise<string> {
  const chunks = Math.max(1, Math.ceil(size / chunkBytes));
  const digests: Buffer[] = new Array(chunks);
  const workers = Array.from({ length: Math.min(chunks, Math.max(1, Math.min(os.cpus().length, 8))) }, () => new Worker(CHUNK_WORKER, { eval: true }));
  try {
    let next = 0;
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const give = (): void => {
              if (next >= chunks) return resolve();
              const index = next++;
              const offset = index * chunkBytes;
              w.postMessage({ file, offset, length: Math.min(chunkBytes, size - offset), index });
            };
            w.on('message', (m: { index: number; digest: Uint8Array }) => {
              digests[m.index] = Buffer.from(m.digest);
              give();
            });
            w.on('error', reject);
            give();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return createHash('sha256').update(Buffer.concat(digests)).digest('hex');
}

/**
 * The sha256 a manifest lists for a file: whole-file for small files and version 1 entries; over the
 * chunk digests for large ones (`chunkBytes`), computed in parallel.
 */
export async function hashFile(file: string, chunkBytes?: number): Promise<string> {
  if (chunkBytes === undefined) return hashWhole(file);
  const { size } = await fsp.stat(file);
  return hashChunked(file, size, chunkBytes);
}

/** How a file of this size is hashed in a new manifest: in chunks when it is large. */
export function chunkBytesFor(size: number): number | undefined {
  return size > HASH_CHUNK_BYTES ? HASH_CHUNK_BYTES : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(message: string): ImageError {
  return new ImageError('EDECODE', MANIFEST_FILE, message);
}

/** Checks the shape of a parsed manifest: version first, since another version may have another shape. */
export function parseManifest(text: string): Manifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new ImageError('EDECODE', MANIFEST_FILE, `not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isRecord(v) || v.format !== MANIFEST_FORMAT) throw bad(`not a Cryopod manifest (format is not "${MANIFEST_FORMAT}")`);
  if (!READABLE_VERSIONS.includes(v.formatVersion as number)) {
    throw new ImageError('EVERSION', MANIFEST_FILE, `format version ${JSON.stringify(v.formatVersion)} is not supported (this Cryopod reads versions ${READABLE_VERSIONS.join(' and ')})`);
  }
  if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0) throw bad('pid is not a positive integer');
  if (typeof v.comm !== 'string') throw bad('comm is not a string');
  if (typeof v.createdAt !== 'string' || Number.isNaN(Date.parse(v.createdAt))) throw bad('createdAt is not a date');
  if (typeof v.frozenSeconds !== 'number' || !Number.isFinite(v.frozenSeconds) || v.frozenSeconds < 0) {
    throw bad('frozenSeconds is not a non-negative number');
  }
  if (!Array.isArray(v.files)) throw bad('files is not an array');
  if (v.files.length > MAX_MANIFEST_FILES) {
    throw new ImageError('ETOOBIG', MANIFEST_FILE, `lists ${v.files.length} files, over the cap of ${MAX_MANIFEST_FILES}`);
  }
  const seen = new Set<string>();
  const files: ManifestFile[] = v.files.map((f: unknown, i: number) => {
    if (!isRecord(f)) throw bad(`files[${i}] is not an object`);
    const { name, size, sha256, blake3, chunkBytes, chunkBlake3 } = f;
    // A name is joined to the checkpoint directory: no separators, no "..", no hidden tricks.
    if (typeof name !== 'string' || !SAFE_NAME.test(name) || name === MANIFEST_FILE) throw bad(`files[${i}].name ${JSON.stringify(name)} is not a plain image file name`);
    if (seen.has(name)) throw bad(`files[${i}].name ${name} is listed twice`);
    seen.add(name);
    if (!Number.isSafeInteger(size) || (size as number) < 0) throw bad(`files[${i}] (${name}) has no valid size`);
    if (blake3 !== undefined) {
      if ((v.formatVersion as number) < 3 || sha256 !== undefined) throw bad(`files[${i}] (${name}) has a blake3 digest, which only version 3 lists (instead of sha256)`);
      if (typeof blake3 !== 'string' || !SHA256_HEX.test(blake3)) throw bad(`files[${i}] (${name}) has no valid blake3`);
      if (chunkBytes === undefined) throw bad(`files[${i}] (${name}) has a blake3 digest without chunkBytes`);
    } else if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) throw bad(`files[${i}] (${name}) has no valid sha256`);
    const digest = blake3 !== undefined ? { blake3: blake3 as string } : { sha256: sha256 as string };
    if (chunkBytes === undefined) return { name, size: size as number, ...digest };
    if (v.formatVersion === 1 || !Number.isSafeInteger(chunkBytes) || (chunkBytes as number) < 4096 || (chunkBytes as number) > 1 << 30) {
      throw bad(`files[${i}] (${name}) has an invalid chunkBytes ${JSON.stringify(chunkBytes)}`);
    }
    if (chunkBlake3 === undefined) return { name, size: size as number, ...digest, chunkBytes: chunkBytes as number };
    // One digest per chunk (a file of no bytes has one chunk, as the root over it does).
    const want = Math.max(1, Math.ceil((size as number) / (chunkBytes as number))) * 64;
    if ((v.formatVersion as number) < 4 || blake3 === undefined) throw bad(`files[${i}] (${name}) lists chunk digests, which only version 4 lists (with blake3)`);
    if (typeof chunkBlake3 !== 'string' || chunkBlake3.length !== want || !/^[0-9a-f]*$/.test(chunkBlake3)) {
      throw bad(`files[${i}] (${name}) has an invalid chunkBlake3 (${want} lower-case hex digits expected: one digest per chunk)`);
    }
    return { name, size: size as number, ...digest, chunkBytes: chunkBytes as number, chunkBlake3 };
  });
  return {
    format: MANIFEST_FORMAT,
    formatVersion: v.formatVersion as number,
    pid: v.pid as number,
    comm: v.comm,
    createdAt: v.createdAt,
    frozenSeconds: v.frozenSeconds,
    files,
  };
}

export async function loadManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let st;
  try {
    st = await fsp.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ImageError('EMISSING', MANIFEST_FILE, `missing in ${dir}: the checkpoint is incomplete or this is not a checkpoint directory`, { cause: err });
    }
    throw err;
  }
  if (!st.isFile()) throw bad('is not a regular file');
  if (st.size > MAX_MANIFEST_BYTES) throw new ImageError('ETOOBIG', MANIFEST_FILE, `${st.size} bytes is over the cap of ${MAX_MANIFEST_BYTES}`);
  return parseManifest(await fsp.readFile(file, 'utf8'));
}

/** Stats a listed file: it must exist, be a regular file and have the listed size. */
async function checkSize(dir: string, entry: ManifestFile): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(path.join(dir, entry.name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ImageError('ECHECKSUM', entry.name, 'listed in the manifest but missing', { cause: err });
    }
    throw err;
  }
  if (!st.isFile()) throw new ImageError('ECHECKSUM', entry.name, 'is not a regular file');
  if (st.size !== entry.size) throw new ImageError('ECHECKSUM', entry.name, `size is ${st.size} bytes, the manifest says ${entry.size}`);
}

function checkHash(entry: ManifestFile, actual: string): void {
  const { algorithm, hex } = digestOf(entry);
  if (actual !== hex) {
    throw new ImageError('ECHECKSUM', entry.name, `${algorithm} is ${actual}, the manifest says ${hex}`);
  }
}

/**
 * Verifies the size and sha256 of every file the manifest lists. `deferHash` names files whose size is
 * checked here but whose sha256 the caller verifies itself before using a byte of them (a restore hands
 * the pages images' digests to the native fill, which hashes them as it writes them: page_fill.h).
 */
export async function verifyManifest(dir: string, opts: { deferHash?: (name: string) => boolean } = {}): Promise<Manifest> {
  const manifest = await loadManifest(dir);
  for (const entry of manifest.files) await checkSize(dir, entry);
  for (const entry of manifest.files) {
    if (opts.deferHash?.(entry.name)) continue;
    if (entry.chunkBlake3 === undefined) {
      checkHash(entry, await hashFileAs(path.join(dir, entry.name), entry));
      continue;
    }
    // The chunk list too (a lazy restore trusts it once it hashes to the root): the file's own chunks.
    const { root, chunks } = await hashFileChunks(path.join(dir, entry.name), entry.chunkBytes as number);
    checkHash(entry, root);
    if (chunks !== entry.chunkBlake3) throw new ImageError('ECHECKSUM', entry.name, 'its chunks do not match the chunk digests the manifest lists');
  }
  return manifest;
}

/**
 * Reads a listed metadata image into memory and verifies it on those very bytes, so that what is
 * decoded is what was hashed (a file swapped after verifyManifest is caught here).
 */
export async function readVerified(dir: string, manifest: Manifest, name: string): Promise<Buffer> {
  const entry = manifest.files.find((f) => f.name === name);
  if (entry === undefined) throw new ImageError('EMISSING', name, 'is not listed in the manifest');
  if (entry.size > MAX_IMAGE_BYTES) throw new ImageError('ETOOBIG', name, `${entry.size} bytes is over the ${MAX_IMAGE_BYTES}-byte cap for an image file`);
  await checkSize(dir, entry);
  const buf = await fsp.readFile(path.join(dir, name));
  if (buf.length !== entry.size) throw new ImageError('ECHECKSUM', name, `size is ${buf.length} bytes, the manifest says ${entry.size}`);
  checkHash(entry, sha256Of(buf));
  return buf;
}

/** Writes the manifest atomically and durably: temp file, fsync, rename, fsync of the directory. */
export async function writeManifest(dir: string, manifest: Manifest): Promise<number> {
  const text = JSON.stringify(manifest, null, 2) + '\n';
  const tmp = path.join(dir, `.${MANIFEST_FILE}.tmp`);
  // 'wx' (O_CREAT|O_EXCL): a name planted in the directory, a symlink above all, is refused, not followed.
  const fh = await fsp.open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, path.join(dir, MANIFEST_FILE));
  await syncDir(dir);
  return Buffer.byteLength(text);
}

export async function syncDir(dir: string): Promise<void> {
  const dh = await fsp.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
