/**
 * The behaviour every image-store backend must have, as jest tests: the file store and the S3 store
 * (against a real MinIO) each run it. `raw` reaches the stored bytes behind the store's back, as an
 * attacker who can write the bucket or the shared directory would.
 */
import type { KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { SEAL_FILE, sealCheckpoint } from '../../images/seal';
import { verifySeal } from '../../images/seal-verify';
import { keyRingFrom } from '../cipher';
import type { ImageStore, StoreOptions } from '../image-store';
import { findOrphans } from '../orphans';
import { bytes, keyPair, makeCheckpoint, readTree, tempDir } from './fixture';

export interface RawAccess {
  read(key: string, file: string): Promise<Buffer>;
  write(key: string, file: string, data: Buffer): Promise<void>;
  remove(key: string, file: string): Promise<void>;
  /** Leaves what an uploader killed mid-way leaves behind (a temp directory, or objects without a seal). */
  leavePartial(key: string): Promise<void>;
}

export interface Backend {
  open(opts?: StoreOptions): ImageStore;
  raw: RawAccess;
}

const KEY_A = bytes(32, 11).toString('base64');
const KEY_B = bytes(32, 12).toString('base64');
export const ENCRYPTED = { keys: keyRingFrom({ current: 'a', keys: { a: KEY_A } }) };

export function storeContract(backend: () => Backend): void {
  let signer: { privateKey: KeyObject; publicKey: KeyObject };
  let scratch: string;
  let n = 0;
  const nextKey = (): string => `team-a/ckpt-${process.pid}-${Date.now().toString(36)}-${++n}`;

  beforeAll(() => {
    signer = keyPair();
  });
  beforeEach(async () => {
    scratch = await tempDir();
  });
  afterEach(async () => {
    await fsp.rm(scratch, { recursive: true, force: true });
  });

  async function uploaded(opts: StoreOptions = {}, pagesBytes?: number): Promise<{ store: ImageStore; key: string; src: string }> {
    const store = backend().open(opts);
    const src = path.join(scratch, 'src');
    await makeCheckpoint(src, { key: signer.privateKey, encryptionKeyId: store.encryptionKeyId, pagesBytes });
    const key = nextKey();
    await store.upload(key, src);
    return { store, key, src };
  }

  const verified = async (store: ImageStore, key: string): Promise<string> => {
    const dst = path.join(scratch, `dst-${++n}`);
    await store.download(key, dst);
    await verifySeal(dst, { trusted: [signer.publicKey] });
    return dst;
  };

  test('upload, exists, list, download byte for byte, verify, readFile, remove', async () => {
    const progress: number[] = [];
    const store = backend().open();
    const src = path.join(scratch, 'src');
    await makeCheckpoint(src, { key: signer.privateKey });
    const key = nextKey();
    expect(await store.exists(key)).toBe(false);
    await store.upload(key, src, { onProgress: (p) => progress.push(p.doneBytes) });
    expect(progress[progress.length - 1]).toBe(Object.values(await readTree(src)).reduce((s, b) => s + Number(b.split(' ')[0]), 0));
    expect(await store.exists(key)).toBe(true);
    expect((await store.list('team-a')).find((c) => c.key === key)).toMatchObject({ complete: true, url: store.urlOf(key) });
    const dst = await verified(store, key);
    expect(await readTree(dst)).toEqual(await readTree(src));
    const got: Array<{ doneBytes: number; totalBytes: number }> = [];
    await store.download(key, path.join(scratch, 'again'), { onProgress: (p) => got.push(p) });
    expect(got[got.length - 1]).toMatchObject({ doneBytes: progress[progress.length - 1], totalBytes: progress[progress.length - 1] });
    expect(JSON.parse((await store.readFile(key, 'pod.json')).toString()).kind).toBe('Pod');
    expect(await store.remove(key)).toBe('removed');
    expect(await store.exists(key)).toBe(false);
    expect(await store.remove(key)).toBe('absent');
  });

  test('a published checkpoint is immutable', async () => {
    const { store, key, src } = await uploaded();
    await expect(store.upload(key, src)).rejects.toMatchObject({ reason: 'Exists' });
  });

  test('an unsealed tree is not uploaded', async () => {
    const store = backend().open();
    const src = path.join(scratch, 'src');
    await makeCheckpoint(src, { key: signer.privateKey });
    await fsp.rm(path.join(src, SEAL_FILE));
    await expect(store.upload(nextKey(), src)).rejects.toThrow(/seal a checkpoint/);
  });

  test('encrypted at rest: stored bytes are not the plain ones, download gives them back', async () => {
    const { store, key, src } = await uploaded(ENCRYPTED);
    const stored = await backend().raw.read(key, 'pod.json');
    expect(stored.includes(Buffer.from('secret-token-123'))).toBe(false);
    expect(stored.subarray(0, 8).toString()).toBe('CPODENC1');
    const dst = await verified(store, key);
    expect(await readTree(dst)).toEqual(await readTree(src));
    expect(JSON.parse((await store.readFile(key, 'pod.json')).toString()).spec.containers[0].env[0].value).toBe('secret-token-123');
  });

  test('a wrong key fails cleanly, naming the key id', async () => {
    const { key } = await uploaded(ENCRYPTED);
    const wrong = backend().open({ keys: keyRingFrom({ keys: { a: KEY_B } }) });
    await expect(wrong.download(key, path.join(scratch, 'w'))).rejects.toMatchObject({ reason: 'Decrypt', message: expect.stringMatching(/key id a.*different key \(wrong key\)/) });
    const none = backend().open();
    await expect(none.readFile(key, 'pod.json')).rejects.toMatchObject({ reason: 'Decrypt', message: expect.stringMatching(/no key with that id/) });
  });

  test('a tampered byte in an encrypted image is refused at download', async () => {
    const { store, key } = await uploaded(ENCRYPTED);
    const data = await backend().raw.read(key, 'app/pages-1.img');
    data[data.length >> 1] ^= 1;
    await backend().raw.write(key, 'app/pages-1.img', data);
    await expect(store.download(key, path.join(scratch, 't'))).rejects.toMatchObject({ reason: 'Decrypt', message: expect.stringMatching(/pages-1.img: chunk \d+ fails authentication/) });
  });

  test('a truncated encrypted file (cut at a chunk boundary) is refused', async () => {
    const { store, key } = await uploaded(ENCRYPTED);
    const data = await backend().raw.read(key, 'app/pages-1.img');
    const header = data.length - ((3 << 20) + 123 + 4 * 16);
    await backend().raw.write(key, 'app/pages-1.img', data.subarray(0, header + 2 * ((1 << 20) + 16)));
    await expect(store.download(key, path.join(scratch, 't'))).rejects.toMatchObject({ reason: 'Decrypt', message: expect.stringMatching(/cut short/) });
  });

  for (const file of ['app/pages-1.img', 'app/core-1.img', 'pod.json', 'app/cryopod-manifest.json']) {
    test(`a tampered byte in ${file} is refused by verification`, async () => {
      const { store, key } = await uploaded();
      const data = await backend().raw.read(key, file);
      data[data.length - 3] ^= 0x20;
      await backend().raw.write(key, file, data);
      await expect(verified(store, key)).rejects.toMatchObject({ name: 'SealError', problem: 'Hash', file });
    });
  }

  test('a missing file and a truncated file are refused', async () => {
    const { store, key } = await uploaded();
    await backend().raw.remove(key, 'app/mm-1.img');
    await expect(verified(store, key)).rejects.toMatchObject({ problem: 'Missing', file: 'app/mm-1.img' });
    const two = await uploaded();
    const data = await backend().raw.read(two.key, 'app/pages-1.img');
    await backend().raw.write(two.key, 'app/pages-1.img', data.subarray(0, data.length - 4096));
    await expect(verified(two.store, two.key)).rejects.toMatchObject({ problem: 'Size', file: 'app/pages-1.img' });
  });

  test('a rewritten manifest and seal are refused: re-signed with another key, edited, or unsigned', async () => {
    const { store, key } = await uploaded();
    // The attacker changes an image, fixes the manifest and seals again with a key of their own.
    const forged = path.join(scratch, 'forged');
    await store.download(key, forged);
    await fsp.writeFile(path.join(forged, 'app', 'mm-1.img'), bytes(700, 99));
    const manifestPath = path.join(forged, 'app', 'cryopod-manifest.json');
    const m = JSON.parse(await fsp.readFile(manifestPath, 'utf8'));
    const { hashFile } = await import('../../images/manifest');
    m.files.find((f: { name: string }) => f.name === 'mm-1.img').sha256 = await hashFile(path.join(forged, 'app', 'mm-1.img'));
    await fsp.writeFile(manifestPath, JSON.stringify(m));
    const sealText = await fsp.readFile(path.join(forged, SEAL_FILE), 'utf8');
    await fsp.rm(path.join(forged, SEAL_FILE));
    await sealCheckpoint(forged, { key: keyPair().privateKey });
    const raw = backend().raw;
    for (const f of ['app/mm-1.img', 'app/cryopod-manifest.json', SEAL_FILE]) await raw.write(key, f, await fsp.readFile(path.join(forged, f)));
    await expect(verified(store, key)).rejects.toMatchObject({ problem: 'UnknownKey' });

    // The original signature kept, the hashes edited to match.
    const seal = JSON.parse(sealText);
    const { hashFile: h } = await import('../../images/manifest');
    seal.files.find((f: { path: string }) => f.path === 'app/mm-1.img').sha256 = await h(path.join(forged, 'app', 'mm-1.img'));
    Object.assign(seal.files.find((f: { path: string }) => f.path === 'app/cryopod-manifest.json'), { sha256: await h(manifestPath), size: (await fsp.stat(manifestPath)).size });
    await raw.write(key, SEAL_FILE, Buffer.from(JSON.stringify(seal)));
    await expect(verified(store, key)).rejects.toMatchObject({ problem: 'BadSignature' });

    // Signature removed: refused unless the caller opts out explicitly.
    delete seal.signature;
    await raw.write(key, SEAL_FILE, Buffer.from(JSON.stringify(seal)));
    await expect(verified(store, key)).rejects.toMatchObject({ problem: 'Unsigned' });
    const dst = path.join(scratch, 'optout');
    await store.download(key, dst);
    await expect(verifySeal(dst, { allowUnsigned: true })).resolves.toMatchObject({ format: 'cryopod-seal' });
  });

  test('an aborted upload publishes nothing, and can be done again', async () => {
    const store = backend().open();
    const src = path.join(scratch, 'src');
    await makeCheckpoint(src, { key: signer.privateKey, pagesBytes: 12 << 20 });
    const key = nextKey();
    const ac = new AbortController();
    const up = store.upload(key, src, { signal: ac.signal, onProgress: (p) => p.doneBytes > 4 << 20 && ac.abort() });
    await expect(up).rejects.toThrow();
    expect(await store.exists(key)).toBe(false);
    expect((await store.list('team-a')).filter((c) => c.key === key && c.complete)).toEqual([]);
    await store.upload(key, src);
    await verified(store, key);
  });

  test('what a killed upload left is listed as incomplete, found as an orphan and removed', async () => {
    const store = backend().open();
    const key = nextKey();
    await backend().raw.leavePartial(key);
    expect(await store.exists(key)).toBe(false);
    expect((await store.list('team-a')).filter((c) => c.key === key)).toMatchObject([{ complete: false }]);
    // An orphan: no live Checkpoint names it, and it is older than the grace period.
    expect((await findOrphans(store, new Set([key]), { minAgeMs: 0 })).map((c) => c.key)).not.toContain(key);
    expect((await findOrphans(store, new Set(), { minAgeMs: 3_600_000 })).map((c) => c.key)).not.toContain(key);
    expect((await findOrphans(store, new Set(), { minAgeMs: 0, under: 'team-a' })).map((c) => c.key)).toContain(key);
    expect(await store.remove(key)).toBe('removed');
    expect((await store.list('team-a')).filter((c) => c.key === key)).toEqual([]);
  });

  test('retention: removing old checkpoints leaves the others whole', async () => {
    const one = await uploaded();
    const two = await uploaded();
    expect(await one.store.remove(one.key)).toBe('removed');
    const keys = (await two.store.list('team-a')).map((c) => c.key);
    expect(keys).toContain(two.key);
    expect(keys).not.toContain(one.key);
    await verified(two.store, two.key);
  });
}
