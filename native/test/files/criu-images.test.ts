/**
 * Contents saved in CRIU's own separate images, which Debian's `crit` decodes as it decodes CRIU's:
 * - deleted files (native/src/core/files/ghost.cc for fds, native/src/core/vmas.cc and
 *   restore_memory.cc for mappings; images/ghosts.ts): remap-fpath.img names each deleted file's entry
 *   of files.img a ghost, ghost-file-<id>.img holds its contents. A file mapped twice (private and
 *   shared) and deleted comes back as one ghost both mappings share; a deleted file held open comes
 *   back with its contents from its ghost image;
 * - a FIFO's bytes (fifo.cc, images/files/fifo.ts): in fifo-data.img, keyed by pipe_id, not in files.img;
 * - a memfd's name, seals and contents (memfd.cc, images/memfds.ts): memfd-inode.img, and the contents
 *   as shared memory pages, pagemap-shmem-<shmid>.img naming a pages file of their own.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readCheckpoint } from '../../../images';
import { cleanup, dumpRestoreCheck } from '../harness';
import { startFilesVictim } from './harness';

jest.setTimeout(60_000);
afterEach(cleanup);

function critDecode(file: string): { magic: string; entries: Array<Record<string, unknown>> } {
  const r = spawnSync('/usr/bin/crit', ['decode', '-i', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`crit decode ${file}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('a deleted file mapped private and shared: one ghost image crit decodes, remapped for every VMA, shared again after restore', async () => {
  const v = await startFilesVictim('ghost-map');
  const { cp, result } = await dumpRestoreCheck(v);
  expect(result).toBe('PASS');

  const { task } = await readCheckpoint(cp.dir);
  const ghostVmas = task.vmas.filter((m) => m.ghost !== undefined);
  const mapped = path.join(v.workdir, 'mapped');
  expect(ghostVmas.map((m) => `${m.kind} ${m.path}`).sort()).toEqual([`file-private ${mapped}`, `file-private ${mapped}`, `file-shared ${mapped}`]);
  expect(new Set(ghostVmas.map((m) => m.ghost!.id)).size).toBe(1);
  expect(ghostVmas.filter((m) => m.ghost!.data !== undefined).length).toBe(1);

  const remap = critDecode(path.join(cp.dir, 'remap-fpath.img'));
  expect(remap.magic).toBe('REMAP_FPATH');
  expect(remap.entries.map((e) => [e.remap_id, e.remap_type])).toEqual(ghostVmas.map(() => [1, 'GHOST']));
  const ghost = critDecode(path.join(cp.dir, 'ghost-file-1.img'));
  expect(ghost.magic).toBe('GHOST_FILE');
  const [entry] = ghost.entries;
  expect(Number(entry.size)).toBe(4 * 4096);
  const contents = Buffer.from(String(entry.extra), 'base64');
  expect(contents.length).toBe(4 * 4096);
  // Page 2 holds what the shared mapping wrote into the file; page 1 the pattern (the private write is a page of pages-1.img).
  expect(contents.subarray(2 * 4096, 3 * 4096).every((b) => b === 's'.charCodeAt(0))).toBe(true);
  expect(contents.subarray(4096, 2 * 4096).includes('p'.repeat(64))).toBe(false);
  expect(fs.readdirSync(v.workdir)).not.toContain('mapped');
});

test('a deleted file held open: its contents are in ghost-file-<id>.img (crit decodes it), not in files.img', async () => {
  const v = await startFilesVictim('ghost-holder');
  const { cp, result } = await dumpRestoreCheck(v);
  expect(result).toBe('PASS');
  const files = critDecode(path.join(cp.dir, 'files.img'));
  const regs = files.entries.map((e) => e.reg as Record<string, unknown> | undefined).filter((r) => r !== undefined && String(r.name).endsWith(' (deleted)'));
  expect(regs.map((r) => path.basename(String(r!.name)))).toEqual(['data (deleted)', 'log (deleted)']);
  expect(regs.every((r) => r!.cryopod_contents === undefined)).toBe(true);
  const remap = critDecode(path.join(cp.dir, 'remap-fpath.img'));
  expect(remap.entries.map((e) => e.orig_id)).toEqual(regs.map((r) => r!.id));
  const sizes = remap.entries.map((e) => Number(critDecode(path.join(cp.dir, `ghost-file-${e.remap_id}.img`)).entries[0].size));
  expect(sizes).toEqual([50000, 7]);
});

test('the bytes a FIFO held are in fifo-data.img (crit decodes the entry and its bytes), not in files.img', async () => {
  const v = await startFilesVictim('fifo-holder');
  const { cp, result } = await dumpRestoreCheck(v);
  expect(result).toBe('PASS');
  const files = critDecode(path.join(cp.dir, 'files.img'));
  const fifos = files.entries.map((e) => e.fifo as Record<string, unknown> | undefined).filter((f) => f !== undefined);
  expect(fifos.length).toBeGreaterThan(0);
  expect(fifos.every((f) => f!.cryopod_data === undefined)).toBe(true);
  const data = critDecode(path.join(cp.dir, 'fifo-data.img'));
  expect(data.magic).toBe('FIFO_DATA');
  expect(data.entries.map((e) => e.pipe_id)).toEqual([fifos[0]!.pipe_id]);
  expect(Buffer.from(String(data.entries[0].extra), 'base64').length).toBe(Number(data.entries[0].bytes));
  expect(Number(data.entries[0].bytes)).toBeGreaterThan(0);
});

test('memfds: memfd-inode.img (name, size, seals) and their contents as shmem pages, pagemap-shmem-<id>.img and a pages file, crit decodes them', async () => {
  const v = await startFilesVictim('memfd-holder');
  const { cp, result } = await dumpRestoreCheck(v);
  expect(result).toBe('PASS');
  const files = critDecode(path.join(cp.dir, 'files.img'));
  const memfds = files.entries.map((e) => e.memfd as Record<string, unknown> | undefined).filter((m) => m !== undefined);
  expect(memfds.every((m) => m!.cryopod_contents === undefined)).toBe(true);
  const inodes = critDecode(path.join(cp.dir, 'memfd-inode.img'));
  expect(inodes.magic).toBe('MEMFD_INODE');
  expect(inodes.entries.map((e) => [e.name, Number(e.size)]).sort()).toEqual([['cryopod-open', 3], ['cryopod-sealed', 10000]]);
  expect(inodes.entries.map((e) => Number(e.inode_id)).sort()).toEqual(memfds.map((m) => Number(m!.inode_id)).sort());
  for (const e of inodes.entries) {
    const pm = critDecode(path.join(cp.dir, `pagemap-shmem-${e.shmid}.img`));
    expect(pm.magic).toBe('PAGEMAP');
    const pages = Math.ceil(Number(e.size) / 4096);
    expect([Number(pm.entries[1].vaddr), pm.entries[1].nr_pages]).toEqual([0, pages]);
    expect(fs.statSync(path.join(cp.dir, `pages-${pm.entries[0].pages_id}.img`)).size).toBe(pages * 4096);
  }
});
