/**
 * One negative test per error the reader reports. Where a test damages an image's structure it
 * re-computes the manifest, so that the structural check, not the checksum, is what must fire.
 */

import { promises as fsp } from 'fs';
import * as path from 'path';
import { frameImage, unframeImage } from './codec';
import { encodeTask } from './encode';
import { ImageError, MANIFEST_FILE, PAGES_FILE, readCheckpoint, verifyManifest } from './index';
import { MAX_ENTRY_BYTES, MAX_THREADS } from './limits';
import { hashFile } from './manifest';
import { encodeEntry, messages } from './proto';
import { DumpedTask } from '../native/lib/types';
import { makeThreadedTask } from './test/test-fixture';
import { editManifest, makeCheckpoint, recomputeManifest, removeDir, readFailure } from './test/test-dir';

const failure = readFailure;

/** Replaces one image with the one encodeTask makes for `task` (no writer checks on the way). */
async function replaceImage(dir: string, name: string, task: DumpedTask): Promise<void> {
  const img = encodeTask(task).find((i) => i.name === name);
  if (img === undefined) throw new Error(`no image ${name}`);
  await fsp.writeFile(path.join(dir, name), img.data);
}

describe('readCheckpoint refuses damaged checkpoints', () => {
  let dir = '';
  let task: DumpedTask;
  beforeEach(async () => {
    ({ dir, task } = await makeCheckpoint());
  });
  afterEach(async () => removeDir(dir));
  const file = (name: string): string => path.join(dir, name);

  it('EMISSING: no manifest (an incomplete checkpoint)', async () => {
    await fsp.rm(file(MANIFEST_FILE));
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EMISSING', file: MANIFEST_FILE });
    expect(err.message).toContain('incomplete');
  });

  it('ECHECKSUM: a listed file is missing', async () => {
    await fsp.rm(file('fs-4242.img'));
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'ECHECKSUM', file: 'fs-4242.img' });
    expect(err.message).toBe('fs-4242.img: listed in the manifest but missing');
  });

  it('ECHECKSUM: one tampered byte (same size) in an image', async () => {
    const data = await fsp.readFile(file('core-4242.img'));
    data[data.length - 20] ^= 0x01;
    await fsp.writeFile(file('core-4242.img'), data);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'ECHECKSUM', file: 'core-4242.img' });
    expect(err.message).toMatch(/^core-4242\.img: sha256 is [0-9a-f]{64}, the manifest says [0-9a-f]{64}$/);
  });

  it('ECHECKSUM: one tampered byte in the pages file, also from verifyManifest alone', async () => {
    const fh = await fsp.open(file(PAGES_FILE), 'r+');
    await fh.write(Buffer.from([0xff]), 0, 1, 5000);
    await fh.close();
    await expect(verifyManifest(dir)).rejects.toMatchObject({ code: 'ECHECKSUM', file: PAGES_FILE });
    expect(await failure(dir)).toMatchObject({ code: 'ECHECKSUM', file: PAGES_FILE });
  });

  it('ECHECKSUM: a file of another size than listed', async () => {
    await fsp.appendFile(file('files.img'), Buffer.alloc(3));
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'ECHECKSUM', file: 'files.img' });
    expect(err.message).toContain('the manifest says');
  });

  it('EMAGIC: bad image magic', async () => {
    const data = await fsp.readFile(file('mm-4242.img'));
    data.writeUInt32LE(0x56084025, 4); // PAGEMAP's magic in the MM image
    await fsp.writeFile(file('mm-4242.img'), data);
    await recomputeManifest(dir);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EMAGIC', file: 'mm-4242.img' });
    expect(err.message).toBe('mm-4242.img: image magic is 0x56084025 (a PAGEMAP image), expected 0x57492820 (MM)');
  });

  it('EMAGIC: IMG_COMMON where inventory.img needs IMG_SERVICE', async () => {
    const data = await fsp.readFile(file('inventory.img'));
    data.writeUInt32LE(0x54564319, 0);
    await fsp.writeFile(file('inventory.img'), data);
    await recomputeManifest(dir);
    expect(await failure(dir)).toMatchObject({ code: 'EMAGIC', file: 'inventory.img' });
  });

  it('ETRUNC: an entry cut short', async () => {
    const data = await fsp.readFile(file('core-4242.img'));
    await fsp.writeFile(file('core-4242.img'), data.subarray(0, data.length - 100));
    await recomputeManifest(dir);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'ETRUNC', file: 'core-4242.img' });
    expect(err.message).toMatch(/entry 0 at offset 8: length \d+ but only \d+ bytes left/);
  });

  it('ETRUNC: a file ending inside an entry length', async () => {
    await fsp.appendFile(file('fdinfo-1.img'), Buffer.from([1, 0]));
    await recomputeManifest(dir);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'ETRUNC', file: 'fdinfo-1.img' });
    expect(err.message).toContain('entry 4');
  });

  it('ETOOBIG: an entry length over the cap', async () => {
    const data = await fsp.readFile(file('files.img'));
    data.writeUInt32LE(0x7fff_ffff, 8);
    await fsp.writeFile(file('files.img'), data);
    await recomputeManifest(dir);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'ETOOBIG', file: 'files.img' });
    expect(err.message).toContain(`over the ${MAX_ENTRY_BYTES}-byte cap`);
  });

  it('EBOUNDS: a page run past the end of the pages file', async () => {
    // The stack run grows one page down: still inside its VMA, one page more than the file holds.
    const pages = task.pages.map((r, i) => (i === 4 ? { vaddr: r.vaddr - 4096, nrPages: 4 } : r));
    await replaceImage(dir, 'pagemap-4242.img', { ...task, pages });
    await recomputeManifest(dir);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EBOUNDS', file: 'pagemap-4242.img' });
    expect(err.message).toBe('pagemap-4242.img: run 4 (0x7fffffffb000, 4 pages) points past the end of pages-1.img (45056 bytes)');
  });

  it('EBOUNDS: a pages file longer than the runs', async () => {
    await fsp.appendFile(file(PAGES_FILE), Buffer.alloc(4096));
    await recomputeManifest(dir);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EBOUNDS', file: 'pagemap-4242.img' });
    expect(err.message).toBe('pagemap-4242.img: runs account for 45056 bytes but pages-1.img has 49152 bytes');
  });

  it('EBOUNDS: runs out of order, outside a VMA, or in a VMA without pages', async () => {
    const cases: Array<[DumpedTask['pages'], RegExp]> = [
      [[task.pages[1], task.pages[0], ...task.pages.slice(2)], /run 1 \(0x555555559000, 1 pages\) overlaps or precedes/],
      [[{ vaddr: 0x6000_0000_0000, nrPages: 1 }, ...task.pages.slice(1)], /run 0 \(0x600000000000, 1 pages\) is not inside one VMA/],
      [[{ vaddr: 0x7fff_f7fc_4000, nrPages: 1 }, ...task.pages.slice(1)], /lies in a vdso VMA/],
      [[{ vaddr: 0x5555_5555_9800, nrPages: 1 }, ...task.pages.slice(1)], /is not page-aligned/],
    ];
    for (const [pages, message] of cases) {
      await replaceImage(dir, 'pagemap-4242.img', { ...task, pages });
      await recomputeManifest(dir);
      const err = await failure(dir);
      expect(err).toMatchObject({ code: 'EBOUNDS', file: 'pagemap-4242.img' });
      expect(err.message).toMatch(message);
    }
  });

  it('EDECODE: a pages blake3 in a version 2 manifest, beside a sha256, or without chunkBytes; ECHECKSUM: a wrong blake3', async () => {
    const pagesEntry = (m: Record<string, unknown>) => (m.files as Array<Record<string, unknown>>).find((f) => f.name === PAGES_FILE)!;
    const good = JSON.parse(await fsp.readFile(path.join(dir, MANIFEST_FILE), 'utf8')) as Record<string, unknown>;
    expect(pagesEntry(good)).toMatchObject({ blake3: expect.stringMatching(/^[0-9a-f]{64}$/), chunkBytes: 1 << 20, chunkBlake3: expect.stringMatching(/^([0-9a-f]{64})+$/) });
    const cases: Array<[(m: Record<string, unknown>) => void, RegExp]> = [
      [(m) => (m.formatVersion = 2), /files\[\d+\] \(pages-1\.img\) has a blake3 digest, which only version 3 lists/],
      [(m) => (pagesEntry(m).sha256 = 'a'.repeat(64)), /has a blake3 digest, which only version 3 lists \(instead of sha256\)/],
      [(m) => delete pagesEntry(m).chunkBytes, /has a blake3 digest without chunkBytes/],
      [(m) => (pagesEntry(m).blake3 = 'XYZ'), /has no valid blake3/],
      // Version 4: one chunk digest per chunk, only in v4 and only with blake3.
      [(m) => (pagesEntry(m).chunkBlake3 = `${pagesEntry(m).chunkBlake3 as string}${'0'.repeat(64)}`), /has an invalid chunkBlake3 \(\d+ lower-case hex digits expected: one digest per chunk\)/],
      [(m) => (pagesEntry(m).chunkBlake3 = (pagesEntry(m).chunkBlake3 as string).toUpperCase()), /has an invalid chunkBlake3/],
      [(m) => (m.formatVersion = 3), /lists chunk digests, which only version 4 lists/],
    ];
    for (const [edit, message] of cases) {
      await fsp.writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(good));
      await editManifest(dir, edit);
      const err = await failure(dir);
      expect(err).toMatchObject({ code: 'EDECODE', file: MANIFEST_FILE });
      expect(err.message).toMatch(message);
    }
    await fsp.writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(good));
    await editManifest(dir, (m) => (pagesEntry(m).blake3 = '0'.repeat(64)));
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'ECHECKSUM', file: PAGES_FILE });
    expect(err.message).toMatch(/^pages-1\.img: blake3 is [0-9a-f]{64}, the manifest says 0{64}$/);
    // A chunk list that does not describe the file (here: the first digest zeroed) is caught by the full verify too.
    await fsp.writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(good));
    await editManifest(dir, (m) => (pagesEntry(m).chunkBlake3 = '0'.repeat(64) + (pagesEntry(m).chunkBlake3 as string).slice(64)));
    const listErr = await failure(dir);
    expect(listErr).toMatchObject({ code: 'ECHECKSUM', file: PAGES_FILE });
    expect(listErr.message).toMatch(/its chunks do not match the chunk digests the manifest lists/);
  });

  it('EVERSION: a manifest of another format version', async () => {
    await editManifest(dir, (m) => {
      m.formatVersion = 5;
    });
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EVERSION', file: MANIFEST_FILE });
    expect(err.message).toContain('format version 5 is not supported');
  });

  it('ECHECKSUM: one flipped byte in a chunk-hashed pages file (a hash-tree manifest entry)', async () => {
    const pages = path.join(dir, PAGES_FILE);
    const size = (await fsp.stat(pages)).size;
    await editManifest(dir, (m) => {
      const e = (m.files as Array<{ name: string; chunkBytes?: number; chunkBlake3?: string }>).find((f) => f.name === PAGES_FILE)!;
      e.chunkBytes = 4096; // every page a chunk: the parallel path on a small file
      delete e.chunkBlake3;
    });
    // The manifest's blake3 is over 1 MiB chunks: with chunkBytes 4096 it no longer matches.
    expect((await failure(dir)).code).toBe('ECHECKSUM');
    // Re-hashed as chunks (here sha256 ones, which v3 still reads) it is accepted; one flipped byte in any chunk is caught.
    const good = await hashFile(pages, 4096);
    await editManifest(dir, (m) => {
      const e = (m.files as Array<{ name: string; sha256?: string; blake3?: string }>).find((f) => f.name === PAGES_FILE)!;
      delete e.blake3;
      e.sha256 = good;
    });
    await expect(readCheckpoint(dir)).resolves.toBeDefined();
    const fh = await fsp.open(pages, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, size - 1);
    b[0] ^= 0xff;
    await fh.write(b, 0, 1, size - 1);
    await fh.close();
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'ECHECKSUM', file: PAGES_FILE });
  });

  it('EVERSION: an inventory of another CRIU image version', async () => {
    const inv = encodeEntry(messages().inventory, { img_version: 1 });
    await fsp.writeFile(file('inventory.img'), frameImage('INVENTORY', [inv]));
    await recomputeManifest(dir);
    expect(await failure(dir)).toMatchObject({ code: 'EVERSION', file: 'inventory.img' });
  });

  it('EDECODE: protobuf garbage, a missing required field, a hostile manifest name', async () => {
    await fsp.writeFile(file('fs-4242.img'), frameImage('FS', [Buffer.from([0xff, 0xff, 0xff])]));
    await recomputeManifest(dir);
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'fs-4242.img' });

    await fsp.writeFile(file('fs-4242.img'), frameImage('FS', [encodeEntry(messages().ids, { vm_id: 1, files_id: 1, fs_id: 1, sighand_id: 1 }).subarray(0, 2)]));
    await recomputeManifest(dir);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EDECODE', file: 'fs-4242.img' });
    expect(err.message).toContain('root_id');

    await editManifest(dir, (m) => {
      (m.files as Array<{ name: string }>)[0].name = '../../etc/passwd';
    });
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: MANIFEST_FILE });
  });

  it('EMISSING: an image the manifest does not list', async () => {
    await editManifest(dir, (m) => {
      m.files = (m.files as Array<{ name: string }>).filter((f) => f.name !== 'ids-4242.img');
    });
    expect(await failure(dir)).toMatchObject({ code: 'EMISSING', file: 'ids-4242.img' });
  });
});

describe('readCheckpoint refuses threads that do not add up', () => {
  let dir = '';
  let task: DumpedTask;
  beforeEach(async () => {
    ({ dir, task } = await makeCheckpoint(makeThreadedTask()));
  });
  afterEach(async () => removeDir(dir));
  const file = (name: string): string => path.join(dir, name);

  /** A pstree.img of the fixture task with this thread list. */
  async function writePstree(threads: number[]): Promise<void> {
    const entry = encodeEntry(messages().pstree, { pid: 4242, ppid: 0, pgid: 4242, sid: 4100, threads, cryopod_ppid: 4100 });
    await fsp.writeFile(file('pstree.img'), frameImage('PSTREE', [entry]));
    await recomputeManifest(dir);
  }

  it('EMISSING: a thread of pstree.img whose core image the manifest does not list', async () => {
    await fsp.rm(file('core-4250.img'));
    await editManifest(dir, (m) => {
      m.files = (m.files as Array<{ name: string }>).filter((f) => f.name !== 'core-4250.img');
    });
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EMISSING', file: 'core-4250.img' });
    expect(err.message).toBe('core-4250.img: thread 4250 of task 4242 in pstree.img has no core image in the manifest');
  });

  it('EDECODE: a core image of no thread in pstree.img (the thread list does not match the cores)', async () => {
    await replaceImage(dir, 'pstree.img', { ...task, threads: task.threads.slice(0, 2) });
    await recomputeManifest(dir);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EDECODE', file: 'core-4251.img' });
    expect(err.message).toBe('core-4251.img: is listed in the manifest but is not the core of a thread of task 4242 in pstree.img');
  });

  it('EDECODE: a tid listed twice', async () => {
    await writePstree([4242, 4243, 4250, 4250, 4251]);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EDECODE', file: 'pstree.img' });
    expect(err.message).toBe('pstree.img: task 4242 lists thread 4250 twice');
  });

  it('EDECODE: a thread list without the main thread, or with tid 0', async () => {
    await writePstree([4243, 4250, 4251]);
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'pstree.img', message: expect.stringContaining('does not list its main thread (tid 4242)') });
    await writePstree([4242, 0, 4243, 4250, 4251]);
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'pstree.img', message: expect.stringContaining('tid 0') });
  });

  it('accepts the threads in another order (CRIU lists them as /proc/PID/task does) and gives them back ascending', async () => {
    await writePstree([4250, 4242, 4251, 4243]);
    expect((await readCheckpoint(dir)).task).toStrictEqual(task);
  });

  it('ETOOBIG: more threads than the cap', async () => {
    await writePstree(Array.from({ length: MAX_THREADS + 1 }, (_, i) => 4242 + i));
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'ETOOBIG', file: 'pstree.img' });
    expect(err.message).toBe(`pstree.img: task 4242 has ${MAX_THREADS + 1} threads, over the cap of ${MAX_THREADS}`);
  });

  it('EDECODE: a thread core carrying task-wide parts (the main core copied in its place)', async () => {
    await fsp.copyFile(file('core-4242.img'), file('core-4243.img'));
    await recomputeManifest(dir);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EDECODE', file: 'core-4243.img' });
    expect(err.message).toContain('task-wide parts (tc or ids)');
  });

  it('EDECODE: a thread core with creds other than the main thread\'s, or without its sigmask', async () => {
    const withCore = async (threadCore: Record<string, unknown>): Promise<void> => {
      const [bytes] = unframeImage('core-4243.img', 'CORE', await fsp.readFile(file('core-4243.img')));
      const core = messages().core.toObject(messages().core.decode(bytes));
      const entry = encodeEntry(messages().core, { ...core, thread_core: { ...core.thread_core, ...threadCore } });
      await fsp.writeFile(file('core-4243.img'), frameImage('CORE', [entry]));
      await recomputeManifest(dir);
    };
    const creds = { uid: 1000, gid: 1000, euid: 0, egid: 1000, suid: 1000, sgid: 1000, fsuid: 1000, fsgid: 1000, secbits: 0 };
    await withCore({ creds });
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EDECODE', file: 'core-4243.img' });
    expect(err.message).toBe("core-4243.img: thread 4243 has other creds than the main thread (euid); Cryopod restores all threads with the task's creds");

    // The same creds as the main thread, as CRIU writes them for every thread, are accepted.
    await withCore({ creds: { ...creds, euid: 1000 } });
    expect((await readCheckpoint(dir)).task).toStrictEqual(task);

    await withCore({ blk_sigset: undefined });
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'core-4243.img', message: 'core-4243.img: thread_core lacks blk_sigset' });
  });
});
