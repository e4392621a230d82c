import { promises as fsp } from 'fs';
import * as path from 'path';
import { DumpedTask } from '../native/lib/types';
import { MANIFEST_FILE, PAGES_FILE, readCheckpoint, verifyManifest, writeCheckpoint } from './index';
import { PAGES_CHUNK_BYTES, sha256Of } from './manifest';
import { hashFileChunked } from '../native/lib';
import { findProtoDir } from './proto';
import { encodeTask } from './encode';
import { MAX_MANIFEST_BYTES, MAX_MANIFEST_FILES, MAX_THREADS } from './limits';
import { MANIFEST_FORMAT, MANIFEST_VERSION, parseManifest } from './manifest';
import { makeTask, makeThreadedTask, writePages } from './test/test-fixture';
import { makeCheckpoint, removeDir, tempDir } from './test/test-dir';

const IMAGES = ['inventory.img', 'pstree.img', 'core-4242.img', 'ids-4242.img', 'mm-4242.img', 'pagemap-4242.img', 'files.img', 'fdinfo-1.img', 'fs-4242.img'];

describe('writeCheckpoint + readCheckpoint', () => {
  let dir = '';
  afterEach(async () => removeDir(dir));

  it('gives back a task strictly equal to the one written (bigints, Buffers, numbers, optional keys)', async () => {
    const made = await makeCheckpoint();
    dir = made.dir;
    const { task, pagesPath, manifest } = await readCheckpoint(dir);
    expect(task).toStrictEqual(made.task);
    // Spot checks that toStrictEqual would also catch, stated so a failure reads clearly.
    expect(task.sigactions[2].mask).toBe(0xffff_ffff_ffff_ffffn);
    expect(Buffer.isBuffer(task.xsave) && task.xsave.length).toBe(2688);
    expect(task.vmas[3]).not.toHaveProperty('path');
    expect(pagesPath).toBe(path.join(dir, PAGES_FILE));
    expect(manifest.frozenSeconds).toBe(0.0421);
    expect(manifest.pid).toBe(4242);
    expect(manifest.comm).toBe('victim');
  });

  it('writes the CRIU file set, pages-1.img untouched, and a manifest listing every file with its size and sha256 (pages: chunked blake3)', async () => {
    dir = await tempDir();
    const task = makeTask();
    const pages = await writePages(dir, task);
    const result = await writeCheckpoint(dir, task);
    expect(result.files).toEqual([...IMAGES, PAGES_FILE, MANIFEST_FILE]);
    const onDisk = (await fsp.readdir(dir)).sort();
    expect(onDisk).toEqual([...result.files].sort());
    let total = 0;
    for (const f of result.files) total += (await fsp.stat(path.join(dir, f))).size;
    expect(result.bytes).toBe(total);
    expect(await fsp.readFile(path.join(dir, PAGES_FILE))).toEqual(pages);

    const manifest = await verifyManifest(dir);
    expect(manifest.files.map((f) => f.name)).toEqual([...IMAGES, PAGES_FILE]);
    for (const f of manifest.files.filter((m) => m.name !== PAGES_FILE)) {
      const data = await fsp.readFile(path.join(dir, f.name));
      expect({ name: f.name, size: data.length, sha256: sha256Of(data) }).toEqual(f);
    }
    // A model without the dump's in-flight digest (made by hand here) is hashed by the writer, as the dump would.
    const pagesEntry = manifest.files.find((m) => m.name === PAGES_FILE);
    expect(pagesEntry).toEqual({
      name: PAGES_FILE,
      size: pages.length,
      blake3: expect.stringMatching(/^[0-9a-f]{64}$/),
      chunkBytes: PAGES_CHUNK_BYTES,
      chunkBlake3: expect.stringMatching(new RegExp(`^[0-9a-f]{${64 * Math.max(1, Math.ceil(pages.length / PAGES_CHUNK_BYTES))}}$`)),
    });
    expect(await hashFileChunked(path.join(dir, PAGES_FILE), 'blake3', PAGES_CHUNK_BYTES)).toBe(pagesEntry?.blake3);
    expect((await fsp.stat(path.join(dir, 'core-4242.img'))).mode & 0o777).toBe(0o600);
  });

  it('round-trips a minimal task: no rseq, no files, no sigactions, no pages', async () => {
    dir = await tempDir();
    const task: DumpedTask = {
      ...makeTask(),
      rseq: null,
      files: [],
      sigactions: [],
      pages: [],
      vmas: makeTask().vmas.filter((v) => v.kind !== 'file-shared'),
    };
    await writePages(dir, task);
    expect((await fsp.stat(path.join(dir, PAGES_FILE))).size).toBe(0);
    await writeCheckpoint(dir, task);
    expect((await readCheckpoint(dir)).task).toStrictEqual(task);
  });

  it('a re-written checkpoint replaces the old one, and frozenSeconds comes from the manifest', async () => {
    const made = await makeCheckpoint();
    dir = made.dir;
    const again = { ...made.task, frozenSeconds: 1.5, comm: 'victim2' };
    await writeCheckpoint(dir, again);
    const { task } = await readCheckpoint(dir);
    expect(task.frozenSeconds).toBe(1.5);
    expect(task.comm).toBe('victim2');
  });

  it('refuses, before writing anything, a task it cannot represent or whose pages do not fit', async () => {
    dir = await tempDir();
    const task = makeTask();
    await writePages(dir, task);
    await expect(writeCheckpoint(dir, { ...task, regs: Buffer.alloc(100) })).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringContaining('regs is 100 bytes') });
    const anonWithPath = { ...task, vmas: task.vmas.map((v) => (v.name === '[heap]' ? { ...v, path: '/x' } : v)) };
    await expect(writeCheckpoint(dir, anonWithPath)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(writeCheckpoint(dir, { ...task, files: [...task.files].reverse() })).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringContaining('ascending') });
    await expect(writeCheckpoint(dir, { ...task, pages: task.pages.slice(1) })).rejects.toMatchObject({ code: 'EBOUNDS' });
    await expect(writeCheckpoint(dir, { ...task, sigmask: 1n << 64n })).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringContaining('sigmask') });
    expect(await fsp.readdir(dir)).toEqual([PAGES_FILE]);
  });

  it('refuses to write without the pages file', async () => {
    dir = await tempDir();
    await expect(writeCheckpoint(dir, makeTask())).rejects.toMatchObject({ code: 'EMISSING', file: PAGES_FILE });
  });
});

describe('threads', () => {
  let dir = '';
  afterEach(async () => removeDir(dir));

  it('round-trips a task with three threads, each with its own state, strictly equal', async () => {
    const made = await makeCheckpoint(makeThreadedTask());
    dir = made.dir;
    const { task } = await readCheckpoint(dir);
    expect(task).toStrictEqual(made.task);
    // The threads are told apart, not copies of the main thread or of each other.
    expect(task.threads.map((t) => t.tid)).toEqual([4243, 4250, 4251]);
    expect(task.threads.map((t) => t.sigmask)).toEqual([0n, 0xffff_ffff_fffb_feffn, 1n << 9n]);
    expect(task.threads[0].regs.readBigUInt64LE(16 * 8)).toBe(0x7fff_f7c9_1117n);
    expect(task.threads[0].regs).not.toEqual(task.regs);
    expect(task.threads[0].xsave).not.toEqual(task.threads[1].xsave);
    expect(task.threads[2].xsave.length).toBe(2696);
    expect(task.threads[0].altstack).toEqual({ sp: 0x7fff_f000_0000, size: 0x2000, flags: 0 });
    expect(task.threads[2].rseq).toBeNull();
    expect(task.threads[1].rseq).not.toEqual(task.rseq);
  });

  it('writes one core-<tid>.img per thread after the main one, listed in the manifest with size and sha256', async () => {
    dir = await tempDir();
    const task = makeThreadedTask();
    await writePages(dir, task);
    const result = await writeCheckpoint(dir, task);
    const images = [...IMAGES.slice(0, 3), 'core-4243.img', 'core-4250.img', 'core-4251.img', ...IMAGES.slice(3)];
    expect(result.files).toEqual([...images, PAGES_FILE, MANIFEST_FILE]);
    expect((await fsp.readdir(dir)).sort()).toEqual([...result.files].sort());
    const manifest = await verifyManifest(dir);
    expect(manifest.files.map((f) => f.name)).toEqual([...images, PAGES_FILE]);
    for (const f of manifest.files.filter((m) => /^core-/.test(m.name))) {
      const data = await fsp.readFile(path.join(dir, f.name));
      expect({ name: f.name, size: data.length, sha256: sha256Of(data) }).toEqual(f);
    }
    expect((await fsp.stat(path.join(dir, 'core-4250.img'))).mode & 0o777).toBe(0o600);
  });

  it('refuses, before writing anything, threads out of order, repeated, the main one again, over the cap or malformed', async () => {
    dir = await tempDir();
    const task = makeThreadedTask();
    await writePages(dir, task);
    const [a, b, c] = task.threads;
    const cases: Array<[DumpedTask['threads'], string]> = [
      [[b, a, c], 'threads[1] (tid 4243) is not ascending by tid (the one before is tid 4250)'],
      [[a, a, c], 'threads[1] (tid 4243) is not ascending by tid (the one before is tid 4243)'],
      [[{ ...a, tid: 4242 }, b], 'threads[0] (tid 4242) is the main thread'],
      [[{ ...a, tid: 0 }], 'threads[0] (tid 0): tid is 0'],
      [[a, { ...b, regs: Buffer.alloc(200) }], 'threads[1] (tid 4250).regs is 200 bytes'],
      [[a, b, { ...c, xsave: Buffer.alloc(64) }], 'threads[2] (tid 4251).xsave is 64 bytes, shorter than'],
      [[a, { ...b, sigmask: -1n }], 'threads[1] (tid 4250).sigmask is -1, not a u64'],
      [[{ ...a, rseq: { ptr: 2 ** 53, size: 32, signature: 0 } }], 'threads[0] (tid 4243).rseq.ptr is'],
      [Array.from({ length: MAX_THREADS }, (_, i) => ({ ...a, tid: 5000 + i })), `${MAX_THREADS + 1} threads, over the cap of ${MAX_THREADS}`],
    ];
    for (const [threads, message] of cases) {
      await expect(writeCheckpoint(dir, { ...task, threads })).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringContaining(message) });
    }
    expect(await fsp.readdir(dir)).toEqual([PAGES_FILE]);
  });

  it('a checkpoint re-written with fewer threads reads back with fewer threads', async () => {
    const made = await makeCheckpoint(makeThreadedTask());
    dir = made.dir;
    const fewer = { ...made.task, threads: made.task.threads.slice(1) };
    await writeCheckpoint(dir, fewer);
    // The old core-4243.img is still on disk, but the manifest no longer lists it: not part of the checkpoint.
    expect((await readCheckpoint(dir)).task).toStrictEqual(fewer);
  });

  it('a task at the thread cap fits the manifest caps', () => {
    const task = makeThreadedTask();
    task.threads = Array.from({ length: MAX_THREADS - 1 }, (_, i) => ({ ...task.threads[i % 3], tid: 4_000_000 + i }));
    const images = encodeTask(task);
    expect(images.filter((i) => i.name.startsWith('core-'))).toHaveLength(MAX_THREADS);
    // The manifest writeCheckpoint would write for it (sizes and hashes of the longest form).
    const files = [...images.map((i) => i.name), PAGES_FILE].map((name) => ({ name, size: 2 ** 40, sha256: 'f'.repeat(64) }));
    const text = JSON.stringify({
      format: MANIFEST_FORMAT, formatVersion: MANIFEST_VERSION, pid: task.pid, comm: 'x'.repeat(64),
      createdAt: new Date().toISOString(), frozenSeconds: 1234.5678, files,
    }, null, 2) + '\n';
    expect(files.length).toBeLessThanOrEqual(MAX_MANIFEST_FILES);
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_MANIFEST_BYTES);
    expect(parseManifest(text).files).toHaveLength(files.length);
  });
});

describe('findProtoDir', () => {
  it('finds images/proto from the source tree and from a dist/images build directory', () => {
    const repo = path.resolve(__dirname, '..');
    expect(findProtoDir(__dirname)).toBe(path.join(repo, 'images', 'proto'));
    expect(findProtoDir(path.join(repo, 'dist', 'images'))).toBe(path.join(repo, 'images', 'proto'));
  });
});
