/**
 * The filesystem backend: a directory shared by the nodes and the operator (a ReadWriteMany PVC, NFS,
 * a hostPath), as `file:///root`.
 *
 *   ROOT/KEY/...                       a published checkpoint (its seal inside)
 *   ROOT/PARENT/.partial-NAME-RANDOM/  an upload in progress (or one that died): renamed to ROOT/KEY when done
 *
 * The upload is built in a temp directory next to its final place (same filesystem) and renamed into
 * place in one step, after every file and directory was fsynced: a reader sees all of it or nothing.
 * Nothing outside ROOT is ever created, read or removed (safe-fs.ts).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { listTree, SEAL_FILE } from '../images/seal';
import { parseSealText } from '../images/seal-verify';
import type { KeyRing } from './cipher';
import { StoreError } from './errors';
import type { ImageStore, StoredCheckpoint, StoreOptions, TransferOptions } from './image-store';
import { checkKey } from './location';
import { withRetry } from './retry';
import { createInside, dirInside, mkdirInside, openInside, syncDir } from './safe-fs';
import { DecryptPool } from './decrypt-pool';
import { fetchRanged, Slots } from './fetch-file';
import { decodeSmall, downloadBytes, encodedStream, isEncrypted, localCheckpoint, MAX_SEAL_BYTES, ProgressMeter, readCapped } from './transfer';

const PARTIAL = '.partial-';
const RANGE_BYTES = 8 << 20;
const FILES_AT_ONCE = 4;

export class FileImageStore implements ImageStore {
  readonly url: string;
  private readonly keys?: KeyRing;
  private readonly retryForMs: number;

  constructor(
    readonly root: string,
    opts: StoreOptions = {},
  ) {
    this.url = `file://${root}`;
    this.keys = opts.keys;
    this.retryForMs = opts.retryForMs ?? 120_000;
  }

  get encryptionKeyId(): string | undefined {
    return this.keys?.current;
  }

  urlOf(key: string): string {
    return `${this.url}/${checkKey(key)}`;
  }

  private async ensureRoot(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true, mode: 0o700 });
    if (!(await fsp.lstat(this.root)).isDirectory()) throw new StoreError('OutsideRoot', `storage root ${this.root} is not a directory`);
  }

  async upload(key: string, localDir: string, opts: TransferOptions = {}): Promise<{ bytes: number }> {
    checkKey(key);
    const local = await localCheckpoint(localDir, this.keys);
    return withRetry(`upload of ${key} to ${this.url}`, () => this.uploadOnce(key, localDir, local, opts), { forMs: this.retryForMs, signal: opts.signal });
  }

  private async uploadOnce(key: string, localDir: string, local: Awaited<ReturnType<typeof localCheckpoint>>, opts: TransferOptions): Promise<{ bytes: number }> {
    await this.ensureRoot();
    if (await this.exists(key)) throw new StoreError('Exists', `${this.urlOf(key)} is already published: checkpoints are immutable`);
    const parentRel = path.posix.dirname(key);
    const parent = parentRel === '.' ? this.root : await mkdirInside(this.root, parentRel);
    if ((await dirInside(this.root, key)) !== undefined) throw new StoreError('Exists', `${this.urlOf(key)} exists but holds no seal: not a checkpoint this store published; remove it first`);
    await this.removePartials(key);
    const tmpName = `${PARTIAL}${path.posix.basename(key)}-${randomBytes(6).toString('hex')}`;
    const tmp = path.join(parent, tmpName);
    await fsp.mkdir(tmp, { mode: 0o700 });
    const meter = new ProgressMeter(local.totalBytes, opts.onProgress);
    try {
      const dirs = new Set<string>([tmp]);
      for (const f of local.files) {
        const fh = await createInside(tmp, f.path);
        // The stream owns the handle: flush (fsync) then close when it finishes, close when it fails.
        await pipeline(encodedStream(localDir, f.path, meter, this.keys, isEncrypted(local.seal, f.path)), fh.createWriteStream({ flush: true }), { signal: opts.signal });
        dirs.add(path.dirname(path.join(tmp, f.path)));
      }
      for (const d of [...dirs].sort((a, b) => b.length - a.length)) await syncDir(d);
      // rename(2) onto a name that appeared meanwhile fails (ENOTEMPTY/EEXIST) instead of replacing it.
      await fsp.rename(tmp, path.join(parent, path.posix.basename(key)));
      await syncDir(parent);
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw err;
    }
    return { bytes: local.totalBytes };
  }

  private async readSeal(key: string): Promise<ReturnType<typeof parseSealText>> {
    return parseSealText((await this.readRaw(key, SEAL_FILE, MAX_SEAL_BYTES)).toString('utf8'));
  }

  private async readRaw(key: string, file: string, maxBytes: number): Promise<Buffer> {
    let fh;
    try {
      fh = await openInside(this.root, `${checkKey(key)}/${file}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StoreError('NotFound', `${this.urlOf(key)}/${file} does not exist`, { cause: err });
      throw err;
    }
    const stream = fh.createReadStream();
    try {
      return await readCapped(stream, maxBytes, `${this.urlOf(key)}/${file}`);
    } finally {
      stream.destroy(); // closes the handle, also when reading stopped early
    }
  }

  async download(key: string, localDir: string, opts: TransferOptions = {}): Promise<{ bytes: number }> {
    const sealText = await this.readRaw(key, SEAL_FILE, MAX_SEAL_BYTES);
    const seal = parseSealText(sealText.toString('utf8'));
    const dir = (await dirInside(this.root, key))!;
    const files = await listTree(dir);
    await fsp.mkdir(localDir, { recursive: true, mode: 0o700 });
    if ((await fsp.readdir(localDir)).length) throw new StoreError('BadLocation', `download target ${localDir} is not empty`);
    const meter = new ProgressMeter(downloadBytes(seal, sealText.length), opts.onProgress);
    // The same fetch as the S3 store (fetch-file.ts): decryption on worker threads.
    const slots = new Slots(FILES_AT_ONCE);
    let pool: DecryptPool | undefined;
    const decrypting = { ring: this.keys, pool: () => (pool ??= new DecryptPool()) };
    try {
      await Promise.all(
        files.map((f) =>
          fetchRanged({ name: f.path, size: f.size, get: (start, end) => this.readRange(key, f.path, start, end) }, localDir, {
            rangeBytes: RANGE_BYTES,
            slots,
            meter,
            ...(isEncrypted(seal, f.path) ? { decrypt: decrypting } : {}),
            retry: (what, fn) => withRetry(`${what} from ${this.url}`, fn, { forMs: this.retryForMs, signal: opts.signal }),
          }),
        ),
      );
    } finally {
      await pool?.close();
    }
    return { bytes: meter.doneBytes };
  }

  /** Bytes [start, end) of a stored file, opened inside the root (no symlink followed) for this read alone. */
  private async readRange(key: string, file: string, start: number, end: number): Promise<AsyncIterable<Uint8Array> | Uint8Array[]> {
    const fh = await openInside(this.root, `${key}/${file}`);
    if (end <= start) {
      await fh.close();
      return [];
    }
    return fh.createReadStream({ start, end: end - 1, highWaterMark: 1 << 20 }); // closes the handle at its end
  }

  async readFile(key: string, name: string, maxBytes = 1 << 20): Promise<Buffer> {
    const seal = await this.readSeal(key);
    const raw = await this.readRaw(key, name, maxBytes + 4096);
    const plain = await decodeSmall(raw, name, this.keys, isEncrypted(seal, name));
    if (plain.length > maxBytes) throw new StoreError('BadLocation', `${this.urlOf(key)}/${name} is over ${maxBytes} bytes`);
    return plain;
  }

  async exists(key: string): Promise<boolean> {
    const dir = await dirInside(this.root, checkKey(key)).catch(() => undefined);
    if (dir === undefined) return false;
    return fsp.lstat(path.join(dir, SEAL_FILE)).then((st) => st.isFile(), () => false);
  }

  async list(under = ''): Promise<StoredCheckpoint[]> {
    const out: StoredCheckpoint[] = [];
    const start = under === '' ? this.root : await dirInside(this.root, checkKey(under));
    if (start === undefined) return out;
    const walk = async (dir: string, rel: string, depth: number): Promise<void> => {
      let entries;
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      if (rel !== '' && entries.some((e) => e.name === SEAL_FILE && e.isFile())) {
        out.push({ key: rel, url: this.urlOf(rel), complete: true, modified: (await fsp.lstat(path.join(dir, SEAL_FILE))).mtime });
        return;
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue; // symlinks are never followed
        const p = path.join(dir, e.name);
        if (e.name.startsWith(PARTIAL)) {
          const name = e.name.slice(PARTIAL.length).replace(/-[0-9a-f]{12}$/, '');
          const k = rel ? `${rel}/${name}` : name;
          out.push({ key: k, url: this.urlOf(k), complete: false, modified: (await fsp.lstat(p)).mtime });
        } else if (depth < 6 && !e.name.startsWith('.')) {
          await walk(p, rel ? `${rel}/${e.name}` : e.name, depth + 1);
        }
      }
    };
    await walk(start, under, 0);
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  /** Removes leftovers of uploads of `key` that died (their temp directories). */
  private async removePartials(key: string): Promise<number> {
    const parentRel = path.posix.dirname(key);
    const parent = parentRel === '.' ? this.root : await dirInside(this.root, parentRel);
    if (parent === undefined) return 0;
    const prefix = `${PARTIAL}${path.posix.basename(key)}-`;
    let n = 0;
    for (const e of await fsp.readdir(parent, { withFileTypes: true })) {
      if (e.isDirectory() && e.name.startsWith(prefix) && /^[0-9a-f]{12}$/.test(e.name.slice(prefix.length))) {
        await fsp.rm(path.join(parent, e.name), { recursive: true, force: true });
        n++;
      }
    }
    return n;
  }

  async remove(key: string): Promise<'removed' | 'absent'> {
    checkKey(key);
    const partials = await this.removePartials(key);
    const dir = await dirInside(this.root, key);
    if (dir === undefined) return partials ? 'removed' : 'absent';
    // rm does not follow symlinks inside; dirInside refused any on the way down.
    await fsp.rm(dir, { recursive: true, force: true });
    return 'removed';
  }
}
