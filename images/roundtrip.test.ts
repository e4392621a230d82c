import { promises as fsp } from 'fs';
import * as path from 'path';
import { DumpedTask } from '../native/lib/types';
import { MANIFEST_FILE, PAGES_FILE, readCheckpoint, verifyManifest, writeCheckpoint } from './index';
import { sha256Of } from './manifest';
import { findProtoDir } from './proto';
import { makeTask, writePages } from './test-fixture';
import { makeCheckpoint, removeDir, tempDir } from './test-dir';

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

  it('writes the CRIU file set, pages-1.img untouched, and a manifest listing every file with its size and sha256', async () => {
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
    for (const f of manifest.files) {
      const data = await fsp.readFile(path.join(dir, f.name));
      expect({ name: f.name, size: data.length, sha256: sha256Of(data) }).toEqual(f);
    }
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

describe('findProtoDir', () => {
  it('finds images/proto from the source tree and from a dist/images build directory', () => {
    const repo = path.resolve(__dirname, '..');
    expect(findProtoDir(__dirname)).toBe(path.join(repo, 'images', 'proto'));
    expect(findProtoDir(path.join(repo, 'dist', 'images'))).toBe(path.join(repo, 'images', 'proto'));
  });
});
