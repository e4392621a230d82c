/**
 * Debian's `crit` (criu 3.17) must read every image Cryopod writes, as it reads CRIU's: each *.img but the
 * raw pages-*.img decodes with the right magic, and what it decodes agrees with the dump (pid, comm, VMA
 * count, pages, file offsets). `crit x <dir> mems|ps|fds` explores a checkpoint. The manifest lists every
 * file with its size and sha256.
 */
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import { PAGES_CHUNK_BYTES, hashFile } from '../../images/manifest';
import { hashFileChunked } from '../lib';
import * as fs from 'fs';
import * as path from 'path';
import { Checkpoint, PAGE_SIZE, checkpoint, cleanup, expectKilledByDump, readBack, readFileOrUndefined, startVictim, waitFor, waitForProgress } from './harness';

jest.setTimeout(120_000);

const CRIT = '/usr/bin/crit';

/** Fresh checkpoints of four victims, made once for this file. */
const checkpoints: Array<{ name: string; cp: Checkpoint; workdir: string }> = [];

beforeAll(async () => {
  for (const name of ['memory', 'file-offset', 'sigaction', 'sleeper']) {
    const v = await startVictim(name);
    if (name === 'sigaction') {
      process.kill(v.pid, 'SIGUSR1');
      await waitFor(() => readFileOrUndefined(path.join(v.workdir, 'got-usr1')), 5_000, 'SIGUSR1 counted');
    }
    if (name === 'sleeper') await waitForProgress(v.workdir, 0, 'the sleeper', 1);
    // The sleeper is left running: crit must read a leave-running checkpoint as well.
    const cp = await checkpoint(v, { leaveRunning: name === 'sleeper' });
    if (name !== 'sleeper') await expectKilledByDump(v);
    checkpoints.push({ name, cp, workdir: v.workdir });
  }
}, 120_000);
afterAll(cleanup);

/** Runs crit; returns stdout, throws with stderr when it fails. */
function crit(args: string[]): string {
  const r = spawnSync(CRIT, args, { encoding: 'utf8', timeout: 60_000, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`crit ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.trim().slice(-2000)}`);
  return r.stdout;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function decode(dir: string, file: string): { magic: string; entries: Json[] } {
  return JSON.parse(crit(['decode', '-i', path.join(dir, file)]));
}

const MAGIC_BY_PREFIX: Array<[RegExp, string]> = [
  [/^inventory\.img$/, 'INVENTORY'],
  [/^pstree\.img$/, 'PSTREE'],
  [/^core-\d+\.img$/, 'CORE'],
  [/^mm-\d+\.img$/, 'MM'],
  [/^pagemap-\d+\.img$/, 'PAGEMAP'],
  [/^files\.img$/, 'FILES'],
  [/^fdinfo-\d+\.img$/, 'FDINFO'],
  [/^fs-\d+\.img$/, 'FS'],
  [/^ids-\d+\.img$/, 'IDS'],
];

/** Every object anywhere inside a decoded image. */
function* objects(v: Json): Generator<Record<string, Json>> {
  if (v && typeof v === 'object') {
    if (!Array.isArray(v)) yield v;
    for (const x of Object.values(v)) yield* objects(x);
  }
}

const names = ['memory', 'file-offset', 'sigaction', 'sleeper'];

describe.each(names)('crit reads the checkpoint of %s', (name) => {
  const get = () => {
    const c = checkpoints.find((x) => x.name === name);
    if (!c) throw new Error(`no checkpoint of ${name} (beforeAll failed)`);
    return c;
  };

  test('crit decode parses every *.img but pages-*.img, with the magic of its type', () => {
    const { cp } = get();
    const imgs = fs.readdirSync(cp.dir).filter((f) => f.endsWith('.img') && !/^pages-\d+\.img$/.test(f));
    for (const required of ['inventory.img', 'pstree.img', `core-${cp.pid}.img`, `mm-${cp.pid}.img`, `pagemap-${cp.pid}.img`, 'files.img', `fs-${cp.pid}.img`, `ids-${cp.pid}.img`]) {
      expect(imgs).toContain(required);
    }
    expect(imgs.some((f) => /^fdinfo-\d+\.img$/.test(f))).toBe(true);
    for (const f of imgs) {
      const img = decode(cp.dir, f);
      const want = MAGIC_BY_PREFIX.find(([re]) => re.test(f))?.[1];
      if (want) expect({ file: f, magic: img.magic }).toEqual({ file: f, magic: want });
      expect(Array.isArray(img.entries)).toBe(true);
      expect(img.entries.length).toBeGreaterThan(0);
    }
  });

  test('pages-1.img is raw data, which crit refuses to decode, as CRIU\'s', () => {
    const { cp } = get();
    const r = spawnSync(CRIT, ['decode', '-i', path.join(cp.dir, 'pages-1.img')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(fs.statSync(path.join(cp.dir, 'pages-1.img')).size % PAGE_SIZE).toBe(0);
  });

  test('what crit decodes agrees with the dump', async () => {
    const { cp } = get();
    const inventory = decode(cp.dir, 'inventory.img').entries[0];
    expect(inventory.img_version).toBe(2);
    const pstree = decode(cp.dir, 'pstree.img').entries;
    expect(pstree.length).toBe(1);
    expect(pstree[0].pid).toBe(cp.pid);
    const core = decode(cp.dir, `core-${cp.pid}.img`).entries[0];
    expect(core.mtype).toBe('X86_64');
    expect(core.tc.comm).toBe(name);
    expect(core.thread_info.gpregs).toBeDefined();
    const mm = decode(cp.dir, `mm-${cp.pid}.img`).entries[0];
    expect(mm.vmas.length).toBe(cp.summary.vmas);
    for (const vma of mm.vmas) {
      expect(Number(vma.start) % PAGE_SIZE).toBe(0);
      expect(Number(vma.end)).toBeGreaterThan(Number(vma.start));
    }
    const pagemap = decode(cp.dir, `pagemap-${cp.pid}.img`).entries;
    expect(pagemap[0].pages_id).toBe(1);
    const runs = pagemap.slice(1);
    expect(runs.reduce((n: number, e: Json) => n + Number(e.nr_pages), 0)).toBe(cp.summary.pages);
    for (const run of runs) {
      const start = Number(run.vaddr);
      const end = start + Number(run.nr_pages) * PAGE_SIZE;
      const inside = mm.vmas.some((v: Json) => Number(v.start) <= start && end <= Number(v.end));
      if (!inside) throw new Error(`pagemap run ${start.toString(16)}-${end.toString(16)} lies outside every VMA of mm-${cp.pid}.img`);
    }
    // Our own reader and crit agree on the VMAs.
    const report = await readBack(cp.dir);
    expect(report.vmas.map((v) => [v.start, v.end])).toEqual(mm.vmas.map((v: Json) => [Number(v.start), Number(v.end)]));
  });

  test('the manifest lists every file with its size and sha256 (the pages: a chunked blake3)', async () => {
    const { cp } = get();
    const manifest = JSON.parse(fs.readFileSync(path.join(cp.dir, 'cryopod-manifest.json'), 'utf8'));
    const listed: Array<{ name: string; size: number; sha256?: string; blake3?: string; chunkBytes?: number }> = Array.isArray(manifest.files)
      ? manifest.files
      : Object.entries(manifest.files).map(([n, f]) => ({ name: n, ...(f as { size: number; sha256: string }) }));
    const onDisk = fs.readdirSync(cp.dir).filter((f) => f !== 'cryopod-manifest.json').sort();
    expect(listed.map((f) => f.name).sort()).toEqual(onDisk);
    for (const f of listed) {
      const file = path.join(cp.dir, f.name);
      const buf = fs.readFileSync(file);
      // The pages images: a BLAKE3 over 1 MiB chunks, each listed too (manifest v4), the rest a whole-file sha256.
      if (f.name.startsWith('pages-')) {
        expect(f).toMatchObject({ chunkBytes: PAGES_CHUNK_BYTES, size: buf.length });
        expect(f.blake3).toBe(await hashFileChunked(file, 'blake3', PAGES_CHUNK_BYTES));
        continue;
      }
      const expected = f.chunkBytes ? await hashFile(file, f.chunkBytes) : createHash('sha256').update(buf).digest('hex');
      expect({ name: f.name, size: f.size, sha256: f.sha256 }).toEqual({ name: f.name, size: buf.length, sha256: expected });
    }
  });

  test('crit x mems lists every mapping; crit x ps shows the task', async () => {
    const { cp } = get();
    const mems = crit(['x', cp.dir, 'mems']);
    const report = await readBack(cp.dir);
    for (const v of report.vmas) {
      const range = `${v.start.toString(16).padStart(8, '0')}-${v.end.toString(16).padStart(8, '0')}`;
      expect(mems).toContain(range);
    }
    const ps = crit(['x', cp.dir, 'ps']);
    expect(ps).toMatch(new RegExp(`^\\s*${cp.pid}\\s+\\d+\\s+\\d+\\s+${name}\\s*$`, 'm'));
  });
});

test('crit decode of files.img shows the file-offset victim\'s data file at offset 4219, crit x fds lists it', () => {
  const c = checkpoints.find((x) => x.name === 'file-offset');
  if (!c) throw new Error('no checkpoint of file-offset');
  const files = decode(c.cp.dir, 'files.img');
  const data = [...objects(files.entries)].find((o) => typeof o.name === 'string' && o.name.endsWith('/data.bin') && 'pos' in o);
  expect(data).toBeDefined();
  expect(Number(data?.pos)).toBe(4096 + 123);
  expect(data?.name).toBe(path.join(c.workdir, 'data.bin'));
  const fds = crit(['x', c.cp.dir, 'fds']);
  expect(fds).toContain(path.join(c.workdir, 'data.bin'));
  expect(fds).toContain(path.join(c.workdir, 'log'));
});
