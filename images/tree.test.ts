/**
 * Process trees: round trip, crit, summary, and one negative test per new error of writer and reader.
 */

import { execFile } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { DumpedTree } from '../native/lib/types';
import { frameImage } from './codec';
import { encodeTree } from './encode';
import { ImageError, MANIFEST_FILE, formatSummary, isTreeSummary, readCheckpoint, summarize, writeCheckpoint } from './index';
import { MAX_PIPE_BYTES } from './limits';
import { IMG_COMMON, MAGIC } from './magic';
import { encodeEntry, messages } from './proto';
import { makeTask, makeTree, patternBytes, writeTreePages } from './test/test-fixture';
import { editManifest, recomputeManifest, removeDir, tempDir, readFailure } from './test/test-dir';

const run = promisify(execFile);

async function crit(...args: string[]): Promise<string> {
  const { stdout } = await run('/usr/bin/python3', ['/usr/bin/crit', ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

interface Decoded {
  magic: string;
  entries: Array<Record<string, any>>;
}

async function makeTreeCheckpoint(tree: DumpedTree = makeTree()): Promise<{ dir: string; tree: DumpedTree; pages: Buffer[] }> {
  const dir = await tempDir();
  const pages = await writeTreePages(dir, tree);
  await writeCheckpoint(dir, tree);
  return { dir, tree, pages };
}

const failure = readFailure;

/** Replaces images with those encodeTree makes for `tree` (no writer checks), and re-hashes. */
async function replaceImages(dir: string, tree: DumpedTree, ...names: string[]): Promise<void> {
  const images = encodeTree(tree);
  for (const name of names) {
    const img = images.find((i) => i.name === name);
    if (img === undefined) throw new Error(`no image ${name}`);
    await fsp.writeFile(path.join(dir, name), img.data);
  }
  await recomputeManifest(dir);
}

function pipesData(entries: Array<{ entry: object; data: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(8);
  head.writeUInt32LE(IMG_COMMON, 0);
  head.writeUInt32LE(MAGIC.PIPES_DATA, 4);
  parts.push(head);
  for (const { entry, data } of entries) {
    const e = Buffer.from(encodeEntry(messages().pipeData, entry));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(e.length, 0);
    parts.push(len, e, data);
  }
  return Buffer.concat(parts);
}

/** A copy whose tasks and pipe list a test may change (their arrays are shared: replace, do not push). */
function clone(t: DumpedTree): DumpedTree {
  return { ...t, tasks: t.tasks.map((x) => ({ ...x, files: [...x.files] })), pipes: [...t.pipes] };
}

describe('a process tree', () => {
  let dir = '';
  let tree: DumpedTree;
  let pages: Buffer[];
  beforeAll(async () => {
    ({ dir, tree, pages } = await makeTreeCheckpoint());
  });
  afterAll(async () => removeDir(dir));

  it('round-trips strictly equal: tasks, threads, shmem, inherited runs, pipes and their bytes', async () => {
    const read = await readCheckpoint(dir);
    expect(read.tree).toStrictEqual(tree);
    expect(read.task).toBe(read.tree.tasks[0]);
    expect(read.pagesPaths).toEqual([1, 2, 3, 4].map((n) => path.join(dir, `pages-${n}.img`)));
    expect(read.pagesPath).toBe(read.pagesPaths[0]);
    expect(read.manifest).toMatchObject({ pid: 4242, comm: 'victim', frozenSeconds: 0.25 });
    // The things a tree adds, told apart.
    expect(read.tree.tasks.map((t) => [t.pid, t.ppid, t.threads.length])).toEqual([[4242, 4100, 3], [5001, 4242, 0], [5002, 4242, 0], [5003, 5001, 0]]);
    expect(read.tree.tasks[1].inherited).toEqual([{ vaddr: 0x5555_5555_a000, nrPages: 2 }]);
    expect(read.tree.tasks[0]).not.toHaveProperty('inherited');
    expect(read.tree.tasks[2].vmas.find((v) => v.kind === 'shmem')).toMatchObject({ path: '/memfd:cache', shmid: 8888, shmSize: 0x2000 });
    expect(read.tree.pipes[0].data).toEqual(patternBytes(5000, 5));
    expect(read.tree.pipes[1].data).toHaveLength(0);
    expect(read.tree.tasks[1].files[0]).toEqual(tree.tasks[1].files[0]);
    // Each pages file is the one the manifest hashed, and the runs add up to it.
    for (let i = 0; i < 4; i++) expect(await fsp.readFile(read.pagesPaths[i])).toEqual(pages[i]);
  });

  it('writes the images of every task, files.img and pipes-data.img once, and lists every file', async () => {
    const names = (await fsp.readdir(dir)).sort();
    const perTask = (pid: number, n: number): string[] => [`core-${pid}.img`, `fdinfo-${n}.img`, `fs-${pid}.img`, `ids-${pid}.img`, `mm-${pid}.img`, `pagemap-${pid}.img`, `pages-${n}.img`];
    expect(names).toEqual([
      ...perTask(4242, 1), ...perTask(5001, 2), ...perTask(5002, 3), ...perTask(5003, 4),
      'core-4243.img', 'core-4250.img', 'core-4251.img', MANIFEST_FILE, 'files.img', 'inventory.img', 'pipes-data.img', 'pstree.img',
    ].sort());
    const manifest = JSON.parse(await fsp.readFile(path.join(dir, MANIFEST_FILE), 'utf8')) as { files: Array<{ name: string }> };
    expect(manifest.files.map((f) => f.name).sort()).toEqual(names.filter((n) => n !== MANIFEST_FILE));
  });

  it('crit decodes every image, pipes-data.img and every pagemap included', async () => {
    const files = (await fsp.readdir(dir)).filter((f) => f.endsWith('.img') && !f.startsWith('pages-')).sort();
    expect(files).toHaveLength(31);
    const decoded: Record<string, Decoded> = {};
    for (const f of files) {
      // thread_core.blk_sigset comes as a bare JSON number of up to 20 digits: keep it a string.
      decoded[f] = JSON.parse((await crit('decode', '-i', path.join(dir, f), '--pretty')).replace(/(": )(\d{16,})\b/g, '$1"$2"')) as Decoded;
      expect(decoded[f].entries.length).toBeGreaterThan(0);
    }
    expect(decoded['pstree.img'].entries).toEqual([
      { pid: 4242, ppid: 0, pgid: 4242, sid: 4100, threads: [4242, 4243, 4250, 4251] },
      { pid: 5001, ppid: 4242, pgid: 4242, sid: 4100, threads: [5001] },
      { pid: 5002, ppid: 4242, pgid: 5002, sid: 5002, threads: [5002] },
      { pid: 5003, ppid: 5001, pgid: 4242, sid: 4100, threads: [5003] },
    ]);
    expect(decoded['ids-5002.img'].entries[0]).toEqual({ vm_id: 3, files_id: 3, fs_id: 3, sighand_id: 3 });
    expect(decoded['pagemap-5002.img'].entries[0]).toEqual({ pages_id: 3 });
    expect(decoded['pagemap-5001.img'].entries).toEqual([
      { pages_id: 2 },
      { vaddr: '0x555555559000', nr_pages: 1, flags: 'PE_PRESENT' },
      { vaddr: '0x55555555a000', nr_pages: 2, flags: 'PE_PARENT' },
      { vaddr: '0x55555555e000', nr_pages: 1, flags: 'PE_PRESENT' },
      { vaddr: '0x7ffff7b00000', nr_pages: 4, flags: 'PE_PRESENT' },
      { vaddr: '0x7fffffffc000', nr_pages: 3, flags: 'PE_PRESENT' },
    ]);
    const shm = (decoded['mm-5001.img'].entries[0].vmas as Array<Record<string, unknown>>).find((v) => v.start === '0x7ffff7900000');
    expect(shm).toMatchObject({ shmid: 7777, status: 'VMA_AREA_REGULAR | VMA_ANON_SHARED', flags: 'MAP_SHARED' });
    const memfd = (decoded['mm-5002.img'].entries[0].vmas as Array<Record<string, unknown>>).find((v) => v.start === '0x7ffff7800000');
    expect(memfd).toMatchObject({ shmid: 8888, status: 'VMA_AREA_REGULAR | VMA_ANON_SHARED' });
    const pipes = decoded['files.img'].entries.filter((e) => e.type === 'PIPE');
    expect(pipes.map((e) => [e.id, e.pipe.id, e.pipe.pipe_id, e.pipe.flags])).toEqual([
      [expect.any(Number), pipes[0].id, 90001, '0x1'],
      [expect.any(Number), pipes[1].id, 90001, '0x0'],
      [expect.any(Number), pipes[2].id, 90002, '0x800'],
      [expect.any(Number), pipes[3].id, 90002, '0x1'],
    ]);
    expect(new Set(decoded['files.img'].entries.map((e) => e.id)).size).toBe(decoded['files.img'].entries.length);
    expect(decoded['fdinfo-2.img'].entries[0]).toEqual({ id: pipes[1].id, flags: 0, type: 'PIPE', fd: 0 });
    const pd = decoded['pipes-data.img'];
    expect(pd.magic).toBe('PIPES_DATA');
    expect(pd.entries.map((e) => [e.pipe_id, e.bytes, e.size])).toEqual([[90001, 5000, 65536], [90002, 0, 65536]]);
    expect(Buffer.from(pd.entries[0].extra as string, 'base64')).toEqual(patternBytes(5000, 5));
  });

  it('crit x ps lists every task in its place, crit x fds the pipes, crit x mems the shared memory', async () => {
    const ps = (await crit('x', dir, 'ps')).split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter((l) => l !== '');
    expect(ps).toEqual(['PID PGID SID COMM', '4242 4242 4100 victim', '5001 4242 4100 worker-a', '5003 4242 4100 worker-a2', '5002 5002 5002 worker-b']);
    const fds = (await crit('x', dir, 'fds')).split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
    expect(fds).toEqual(expect.arrayContaining(['4242', '5: pipe[90001]', '5001', '0: pipe[90001]', '5002', '4: pipe[90002]', '6: pipe[90002]', '5003']));
    const mems = (await crit('x', dir, 'mems')).split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
    expect(mems.filter((l) => l.startsWith('7ffff7900000-7ffff7910000 rw- shmem['))).toHaveLength(3);
    expect(mems).toContain('7ffff7800000-7ffff7802000 r-- shmem[2]');
  });

  it('summarizes per task and in total; a single task prints as before', async () => {
    const { tree: read } = await readCheckpoint(dir);
    const s = summarize(read);
    if (!isTreeSummary(s)) throw new Error('not a tree summary');
    expect(s.tasks.map((t) => [t.pid, t.comm, t.threads, t.ppid, t.totals.vmas, t.totals.pages, t.inheritedPages])).toEqual([
      [4242, 'victim', 4, undefined, 10, 13, undefined],
      [5001, 'worker-a', 1, 4242, 10, 9, 2],
      [5002, 'worker-b', 1, 4242, 10, 12, undefined],
      [5003, 'worker-a2', 1, 5001, 10, 5, 5],
    ]);
    expect(s.tasks[0].rows.find((r) => r.kind === 'shmem')).toMatchObject({ prot: 'rw-s', pages: 2, name: '/dev/zero (deleted)' });
    expect(s.totals).toMatchObject({ tasks: 4, threads: 7, vmas: 40, pages: 39, bytes: 39 * 4096, inheritedPages: 7 });
    expect(s.pipeBytes).toBe(5000);
    const text = formatSummary(s);
    const blocks = text.split('\n\n');
    expect(blocks).toHaveLength(5);
    expect(blocks[1].split('\n')[0]).toBe('pid 5001 (worker-a), child of 4242');
    expect(blocks[1]).toContain('2 pages (8192 bytes) shared with the parent, not dumped');
    expect(blocks[4]).toBe('tree: 4 tasks, 7 threads, 40 VMAs, ' + `${s.totals.mappedBytes} bytes mapped, 39 pages (159744 bytes) dumped, 7 pages inherited, 5000 bytes in pipes`);
    // A tree of one without pipes is a single task.
    const single = makeTask();
    expect(formatSummary(summarize({ tasks: [single], pipes: [], frozenSeconds: 0 }))).toBe(formatSummary(summarize(single)));
  });
});

describe('writeCheckpoint refuses a tree it cannot represent, before writing anything', () => {
  let dir = '';
  let tree: DumpedTree;
  beforeEach(async () => {
    dir = await tempDir();
    tree = makeTree();
    await writeTreePages(dir, tree);
  });
  afterEach(async () => removeDir(dir));

  const cases: Array<[string, (t: DumpedTree) => void, string, string]> = [
    ['a child before its parent', (t) => { [t.tasks[1], t.tasks[3]] = [t.tasks[3], t.tasks[1]]; }, 'EINVAL', 'task 5003 comes before its parent 5001'],
    ['a parent outside the tree', (t) => { t.tasks[2].ppid = 1; }, 'EINVAL', 'task 5002 has parent 1, which is not in the tree'],
    ['a pid twice', (t) => { t.tasks[3].pid = 5002; }, 'EINVAL', 'task 5002 is listed twice'],
    ['a tid in two tasks', (t) => { t.tasks[1].threads = [{ ...t.tasks[0].threads[0] }]; }, 'EINVAL', 'task 5001 lists thread 4243, which is a thread of task 4242 too'],
    ['a child in another session', (t) => { t.tasks[3].sid = 5002; t.tasks[3].pgid = 5002; }, 'EINVAL', 'task 5003 is in session 5002 but its parent 5001 is in session 4100'],
    ['a session leader in another group', (t) => { t.tasks[2].pgid = 4242; }, 'EINVAL', 'task 5002 leads session 5002 but is in process group 4242'],
    ['inherited runs in the root', (t) => { t.tasks[0].inherited = [{ vaddr: 0x7fff_f7b0_0000, nrPages: 1 }]; }, 'EBOUNDS', 'the task has no parent in the tree'],
    ['inherited runs in shared memory', (t) => { t.tasks[1].inherited = [{ vaddr: 0x5555_5555_a000, nrPages: 2 }, { vaddr: 0x7fff_f790_0000, nrPages: 1 }]; }, 'EBOUNDS', 'lies in a shmem VMA'],
    ['inherited runs over dumped ones', (t) => { t.tasks[1].inherited = [{ vaddr: 0x5555_5555_a000, nrPages: 5 }]; }, 'EBOUNDS', 'overlaps dumped run 1'],
    ['pages of shared memory dumped twice', (t) => {
      const c = t.tasks[3];
      // The page moves from its heap into the shared memory: the same pages file size.
      c.pages = [c.pages[0], { vaddr: 0x7fff_f790_0000, nrPages: 1 }, c.pages[2]];
    }, 'EBOUNDS', 'pages of shmem object 7777 are dumped by task 4242 already'],
    ['shared memory not inherited', (t) => { t.tasks[3].vmas = t.tasks[3].vmas.map((v) => (v.shmid === 7777 ? { ...v, pgoff: 0x1000 } : v)); }, 'EINVAL', 'task 5003: VMA 4 (0x7ffff7900000-0x7ffff7910000 /dev/zero) maps shmem object 7777, dumped by task 4242, but did not inherit the mapping from its parent'],
    ['an anon VMA with MAP_SHARED', (t) => { t.tasks[1].vmas = t.tasks[1].vmas.map((v) => (v.name === '[stack]' ? { ...v, flags: v.flags | 1 } : v)); }, 'EINVAL', 'shared anonymous memory is of kind shmem'],
    ['a shmem VMA without its size', (t) => { t.tasks[2].vmas = t.tasks[2].vmas.map((v) => (v.shmid === 8888 ? { ...v, shmSize: undefined } : v)); }, 'EINVAL', 'lacks shmid or shmSize'],
    ['a pipe end whose flags say the other end', (t) => { t.tasks[0].files[4] = { ...t.tasks[0].files[4], flags: 0 }; }, 'EINVAL', 'the write end of pipe 90001 has flags 0o0, not O_WRONLY'],
    ['a pipe with another path', (t) => { t.tasks[0].files[4] = { ...t.tasks[0].files[4], path: 'pipe:[1]' }; }, 'EINVAL', 'is not "pipe:[90001]"'],
    ['data of a pipe no task holds', (t) => { t.pipes.push({ id: 1234, data: Buffer.alloc(1) }); }, 'EINVAL', 'pipe 1234 is held by no fd of the tree'],
    ['data of a pipe twice', (t) => { t.pipes.push({ id: 90001, data: Buffer.alloc(1) }); }, 'EINVAL', 'pipe 90001 is listed twice'],
    ['a pipe over the cap', (t) => { t.pipes[0] = { id: 90001, data: Buffer.alloc(MAX_PIPE_BYTES + 1) }; }, 'ETOOBIG', `over the cap of ${MAX_PIPE_BYTES}`],
  ];
  it.each(cases)('%s', async (_name, edit, code, message) => {
    const bad = clone(tree);
    edit(bad);
    const err = await writeCheckpoint(dir, bad).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect({ code: (err as ImageError).code, message: (err as ImageError).message }).toMatchObject({ code, message: expect.stringContaining(message) });
    expect((await fsp.readdir(dir)).sort()).toEqual(['pages-1.img', 'pages-2.img', 'pages-3.img', 'pages-4.img']);
  });

  it('EMISSING: a task without its pages file', async () => {
    await fsp.rm(path.join(dir, 'pages-3.img'));
    await expect(writeCheckpoint(dir, tree)).rejects.toMatchObject({ code: 'EMISSING', file: 'pages-3.img' });
  });
});

describe('readCheckpoint refuses a damaged tree', () => {
  let dir = '';
  let tree: DumpedTree;
  beforeEach(async () => {
    ({ dir, tree } = await makeTreeCheckpoint());
  });
  afterEach(async () => removeDir(dir));
  const file = (name: string): string => path.join(dir, name);

  async function writePstree(entries: Array<Record<string, unknown>>): Promise<void> {
    await fsp.writeFile(file('pstree.img'), frameImage('PSTREE', entries.map((e) => encodeEntry(messages().pstree, e))));
    await recomputeManifest(dir);
  }
  const ps = (pid: number, ppid: number, pgid = 4242, sid = 4100, threads = [pid]): Record<string, unknown> => ({ pid, ppid, pgid, sid, threads });
  const root = ps(4242, 0, 4242, 4100, [4242, 4243, 4250, 4251]);

  it('EDECODE: tasks of one tree from different PID namespaces (cryopod_pid_ns on some only)', async () => {
    await writePstree([{ ...root, cryopod_pid_ns: true }, ps(5001, 4242), ps(5002, 4242, 5002, 5002), ps(5003, 5001)]);
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'pstree.img' });
    expect((await failure(dir)).message).toContain('own PID namespace');
  });

  it('EDECODE: pstree.img out of order, a parent outside the tree, a pid twice, a second root, a root with a ppid', async () => {
    const cases: Array<[Array<Record<string, unknown>>, string]> = [
      [[root, ps(5003, 5001), ps(5001, 4242), ps(5002, 4242, 5002, 5002)], 'pstree.img: task 5003 comes before its parent 5001 (each parent must come before its children)'],
      [[root, ps(5001, 4242), ps(5002, 77, 5002, 5002), ps(5003, 5001)], 'pstree.img: task 5002 has parent 77, which is not in the tree'],
      [[root, ps(5001, 4242), ps(5001, 4242), ps(5003, 5001)], 'pstree.img: task 5001 is listed twice'],
      [[root, ps(5001, 4242), ps(5002, 0, 5002, 5002), ps(5003, 5001)], 'pstree.img: task 5002 has ppid 0: a second root (the root task is the first entry)'],
      [[{ ...root, ppid: 4100 }, ps(5001, 4242), ps(5002, 4242, 5002, 5002), ps(5003, 5001)], 'pstree.img: the root task 4242 (the first entry) has ppid 4100, not 0 as CRIU writes a root'],
    ];
    for (const [entries, message] of cases) {
      await writePstree(entries);
      const err = await failure(dir);
      expect(err).toMatchObject({ code: 'EDECODE', file: 'pstree.img' });
      expect(err.message).toBe(message);
    }
  });

  it('EDECODE: sessions and groups a restore could not rebuild', async () => {
    const cases: Array<[Array<Record<string, unknown>>, string]> = [
      [[root, ps(5001, 4242, 4242, 9), ps(5002, 4242, 5002, 5002), ps(5003, 5001, 5003, 9)], 'task 5001 is in process group 4242 of session 9, but another member of the group is in session 4100'],
      [[root, ps(5001, 4242, 5001, 9), ps(5002, 4242, 5002, 5002), ps(5003, 5001, 5001, 9)], "task 5001 is in session 9 but its parent 4242 is in session 4100: a child is in its parent's session unless it leads its own"],
      [[root, ps(5001, 4242), ps(5002, 4242, 5002, 5002), ps(5003, 5001, 5003, 5002)], 'task 5003 is in session 5002 but its parent 5001 is in session 4100'],
      [[root, ps(5001, 4242), ps(5002, 4242, 4242, 5002), ps(5003, 5001)], 'task 5002 leads session 5002 but is in process group 4242, not its own'],
    ];
    for (const [entries, message] of cases) {
      await writePstree(entries);
      const err = await failure(dir);
      expect(err).toMatchObject({ code: 'EDECODE', file: 'pstree.img' });
      expect(err.message).toContain(message);
    }
  });

  it('EMISSING: a per-task image or pages file the manifest does not list', async () => {
    for (const name of ['mm-5002.img', 'pages-3.img', 'pagemap-5003.img', 'fdinfo-2.img']) {
      await editManifest(dir, (m) => {
        m.files = (m.files as Array<{ name: string }>).filter((f) => f.name !== name);
      });
      const err = await failure(dir);
      expect(err).toMatchObject({ code: 'EMISSING', file: name });
      await recomputeManifestWithAll(dir);
    }
  });

  it('EDECODE: a pages file of no task, a pagemap with another task\'s pages_id, a shared fd table', async () => {
    await fsp.writeFile(file('pages-5.img'), Buffer.alloc(0));
    await editManifest(dir, (m) => {
      (m.files as Array<{ name: string; size: number; sha256: string }>).push({ name: 'pages-5.img', size: 0, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' });
    });
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'pages-5.img', message: expect.stringContaining('has 4 task(s), whose pages are pages-1.img to pages-4.img') });
    await editManifest(dir, (m) => {
      m.files = (m.files as Array<{ name: string }>).filter((f) => f.name !== 'pages-5.img');
    });

    const pm = frameImage('PAGEMAP', [encodeEntry(messages().pagemapHead, { pages_id: 2 })]);
    const saved = await fsp.readFile(file('pagemap-5002.img'));
    await fsp.writeFile(file('pagemap-5002.img'), pm);
    await recomputeManifest(dir);
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'pagemap-5002.img', message: "pagemap-5002.img: pages_id is 2; this task's pages are in pages-3.img" });
    await fsp.writeFile(file('pagemap-5002.img'), saved);

    await fsp.writeFile(file('ids-5003.img'), frameImage('IDS', [encodeEntry(messages().ids, { vm_id: 4, files_id: 2, fs_id: 4, sighand_id: 4 })]));
    await recomputeManifest(dir);
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'ids-5003.img', message: expect.stringContaining('shares its fd table (files_id 2) with task 5001') });
  });

  it('EBOUNDS / EDECODE: inherited runs in the root, a PE_PARENT run without the Cryopod mark, shmem pages dumped twice', async () => {
    const t = clone(tree);
    t.tasks[0] = { ...t.tasks[0], inherited: [{ vaddr: 0x7fff_fffd_e000, nrPages: 1 }] };
    const saved = await fsp.readFile(file('pagemap-4242.img'));
    await replaceImages(dir, t, 'pagemap-4242.img');
    expect(await failure(dir)).toMatchObject({ code: 'EBOUNDS', file: 'pagemap-4242.img', message: expect.stringContaining('but the task has no parent in the tree') });
    await fsp.writeFile(file('pagemap-4242.img'), saved);

    const entries = [
      encodeEntry(messages().pagemapHead, { pages_id: 4 }),
      encodeEntry(messages().pagemapEntry, { vaddr: 0x7fff_f7b0_0000, nr_pages: 1, flags: 1 }),
    ];
    await fsp.writeFile(file('pagemap-5003.img'), frameImage('PAGEMAP', entries));
    await recomputeManifest(dir);
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'pagemap-5003.img', message: expect.stringContaining('run 0 has flags 0x1') });

    const u = clone(tree);
    const c = u.tasks[3];
    u.tasks[3] = { ...c, pages: [...c.pages.slice(0, 2), { vaddr: 0x7fff_f790_0000, nrPages: 1 }, ...c.pages.slice(2)] };
    await replaceImages(dir, u, 'pagemap-5003.img');
    await fsp.appendFile(file('pages-4.img'), Buffer.alloc(4096));
    await recomputeManifest(dir);
    expect(await failure(dir)).toMatchObject({ code: 'EBOUNDS', file: 'pagemap-5003.img', message: expect.stringContaining('pages of shmem object 7777 are dumped by task 4242 already') });
  });

  it('EDECODE: a shmem VMA whose size differs from another mapping of the object', async () => {
    const t = clone(tree);
    t.tasks[3] = { ...t.tasks[3], vmas: t.tasks[3].vmas.map((v) => (v.shmid === 7777 ? { ...v, shmSize: 0x20000 } : v)) };
    await replaceImages(dir, t, 'mm-5003.img');
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'mm-5003.img', message: expect.stringContaining('but task 4242 maps it as /dev/zero of 65536 bytes') });
  });

  it('pipes-data.img: EDECODE for two entries of a pipe or data of a pipe no fd holds, ETOOBIG over the cap, ETRUNC when cut short', async () => {
    const cases: Array<[Buffer, string, string]> = [
      [pipesData([{ entry: { pipe_id: 90001, bytes: 2 }, data: Buffer.from('ab') }, { entry: { pipe_id: 90001, bytes: 1 }, data: Buffer.from('c') }]), 'EDECODE', 'pipes-data.img: entry 1 (pipe 90001): pipe 90001 has more than one data entry'],
      [pipesData([{ entry: { pipe_id: 4711, bytes: 1 }, data: Buffer.from('x') }]), 'EDECODE', 'pipes-data.img: entry 0 holds data of pipe 4711, which no fd of the tree holds'],
      [pipesData([{ entry: { pipe_id: 90001, bytes: MAX_PIPE_BYTES + 1 }, data: Buffer.alloc(MAX_PIPE_BYTES + 1) }]), 'ETOOBIG', `pipes-data.img: entry 0 (pipe 90001) holds ${MAX_PIPE_BYTES + 1} bytes, over the cap of ${MAX_PIPE_BYTES}`],
      [pipesData([{ entry: { pipe_id: 90001, bytes: 100 }, data: Buffer.alloc(99) }]), 'ETRUNC', 'pipes-data.img: entry 0 (pipe 90001): 100 bytes of data but only 99 bytes left'],
      [pipesData([{ entry: { pipe_id: 90001, bytes: 100, size: 64 }, data: Buffer.alloc(100) }]), 'EDECODE', 'more than its buffer size 64'],
    ];
    for (const [data, code, message] of cases) {
      await fsp.writeFile(file('pipes-data.img'), data);
      await recomputeManifest(dir);
      const err = await failure(dir);
      expect(err).toMatchObject({ code, file: 'pipes-data.img' });
      expect(err.message).toContain(message);
    }
    // Without pipes-data.img the pipes are empty, as CRIU leaves them.
    await fsp.rm(file('pipes-data.img'));
    await editManifest(dir, (m) => {
      m.files = (m.files as Array<{ name: string }>).filter((f) => f.name !== 'pipes-data.img');
    });
    expect((await readCheckpoint(dir)).tree.pipes).toEqual([]);
  });

  it('EDECODE: a pipe fd pointing at a regular file, a pipe_entry of another id, a pipe end opened O_RDWR', async () => {
    // fdinfo-2.img's fd 0 is a PIPE; make it point at file id 1 (a REG entry of task 4242).
    await fsp.writeFile(file('fdinfo-2.img'), frameImage('FDINFO', [encodeEntry(messages().fdinfo, { id: 1, flags: 0, type: 2, fd: 0 })]));
    await recomputeManifest(dir);
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'fdinfo-2.img', message: 'fdinfo-2.img: fd 0 is of type PIPE but refers to file id 1, a regular file (REG), not a pipe' });

    const filesWith = async (edit: (pipe: Record<string, unknown>, entry: Record<string, unknown>) => void): Promise<void> => {
      const images = encodeTree(tree);
      await fsp.writeFile(file('fdinfo-2.img'), images.find((i) => i.name === 'fdinfo-2.img')!.data);
      const { unframeImage } = await import('./codec');
      const entries = unframeImage('files.img', 'FILES', images.find((i) => i.name === 'files.img')!.data).map((b) => {
        const e = messages().file.toObject(messages().file.decode(b)) as Record<string, any>;
        if (e.type === 2 && e.pipe.pipe_id === 90001 && e.pipe.flags === 0) edit(e.pipe, e);
        return encodeEntry(messages().file, e);
      });
      await fsp.writeFile(file('files.img'), frameImage('FILES', entries));
      await recomputeManifest(dir);
    };
    await filesWith((p) => { p.id = 999; });
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'files.img', message: expect.stringContaining('carries a pipe_entry of id 999') });
    await filesWith((p) => { p.flags = 2; });
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'files.img', message: expect.stringContaining('open it neither O_RDONLY (read end) nor O_WRONLY (write end)') });
    await filesWith((_p, e) => { e.type = 1; });
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'files.img', message: expect.stringContaining('is of type REG but carries a pipe_entry') });
  });

  it('EDECODE: a core image of no task', async () => {
    await fsp.copyFile(file('core-5003.img'), file('core-6000.img'));
    await editManifest(dir, (m) => {
      (m.files as Array<{ name: string; size: number; sha256: string }>).push({ name: 'core-6000.img', size: 0, sha256: '0'.repeat(64) });
    });
    await recomputeManifest(dir);
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'core-6000.img', message: 'core-6000.img: is listed in the manifest but is not the core of a thread of any task in pstree.img' });
  });
});

/** Lists again every file the checkpoint has (after a test dropped one from the manifest). */
async function recomputeManifestWithAll(dir: string): Promise<void> {
  const names = (await fsp.readdir(dir)).filter((n) => n.endsWith('.img'));
  await editManifest(dir, (m) => {
    m.files = names.map((name) => ({ name, size: 0, sha256: '0'.repeat(64) }));
  });
  await recomputeManifest(dir);
}
