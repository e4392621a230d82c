/**
 * Debian's crit (CRIU 3.17) must read every image we write. pages-1.img is raw
 * pages with no header, as in CRIU, so crit does not decode it; `crit x` reads it indirectly.
 */

import { execFile } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { PAGES_FILE } from './index';
import { makeThreadedTask } from './test/test-fixture';
import { makeCheckpoint, removeDir } from './test/test-dir';

const run = promisify(execFile);
const CRIT = '/usr/bin/crit';

async function crit(...args: string[]): Promise<string> {
  const { stdout } = await run('/usr/bin/python3', [CRIT, ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

interface Decoded {
  magic: string;
  entries: Array<Record<string, unknown>>;
}

describe('crit reads the images', () => {
  let dir = '';
  beforeAll(async () => {
    dir = (await makeCheckpoint()).dir;
  });
  afterAll(async () => removeDir(dir));

  it('decodes every .img file but the raw pages file', async () => {
    const files = (await fsp.readdir(dir)).filter((f) => f.endsWith('.img') && f !== PAGES_FILE).sort();
    expect(files).toHaveLength(9);
    const magics: Record<string, string> = {};
    for (const f of files) {
      const out = JSON.parse(await crit('decode', '-i', path.join(dir, f), '--pretty')) as Decoded;
      magics[f] = out.magic;
      expect(out.entries.length).toBeGreaterThan(0);
    }
    expect(magics).toEqual({
      'core-4242.img': 'CORE', 'fdinfo-1.img': 'FDINFO', 'files.img': 'FILES', 'fs-4242.img': 'FS', 'ids-4242.img': 'IDS',
      'inventory.img': 'INVENTORY', 'mm-4242.img': 'MM', 'pagemap-4242.img': 'PAGEMAP', 'pstree.img': 'PSTREE',
    });
  });

  it('sees our values in CRIU fields: registers, FPU, signals, VMAs, page runs', async () => {
    const core = JSON.parse(await crit('decode', '-i', path.join(dir, 'core-4242.img'), '--pretty')) as Decoded;
    const c = core.entries[0] as any;
    expect(c.mtype).toBe('X86_64');
    expect(c.tc.comm).toBe('victim');
    expect(c.tc.blk_sigset).toBe('0x8000000000010000');
    expect(c.tc.sigactions[2].mask).toBe('0xffffffffffffffff');
    expect(c.thread_info.gpregs.ip).toBe('0x555555555a3c');
    expect(c.thread_info.gpregs.orig_ax).toBe('0xffffffffffffffff');
    expect(c.thread_info.fpregs.mxcsr).toBe(0x1f80);
    expect(c.thread_info.fpregs.xsave.xstate_bv).toBe(0xe7);
    expect(c.thread_info.fpregs.xsave.ymmh_space).toHaveLength(64);
    expect(c.thread_core.rseq_entry.signature).toBe(0x53053053);

    const mm = JSON.parse(await crit('decode', '-i', path.join(dir, 'mm-4242.img'), '--pretty')) as Decoded;
    const vmas = (mm.entries[0] as any).vmas as Array<Record<string, string>>;
    expect(vmas.map((v) => v.status)).toEqual([
      'VMA_AREA_REGULAR | VMA_FILE_PRIVATE', 'VMA_AREA_REGULAR | VMA_FILE_PRIVATE', 'VMA_AREA_REGULAR | VMA_FILE_PRIVATE',
      'VMA_AREA_REGULAR | VMA_AREA_HEAP | VMA_ANON_PRIVATE', 'VMA_AREA_REGULAR | VMA_FILE_SHARED', 'VMA_AREA_REGULAR | VMA_ANON_PRIVATE',
      'VMA_AREA_REGULAR | VMA_AREA_VVAR', 'VMA_AREA_REGULAR | VMA_AREA_VDSO', 'VMA_AREA_REGULAR | VMA_AREA_STACK | VMA_ANON_PRIVATE',
    ]);

    const pm = JSON.parse(await crit('decode', '-i', path.join(dir, 'pagemap-4242.img'), '--pretty')) as Decoded;
    expect(pm.entries[0]).toEqual({ pages_id: 1 });
    expect(pm.entries.slice(1)).toEqual([
      { vaddr: '0x555555559000', nr_pages: 1, flags: 'PE_PRESENT' },
      { vaddr: '0x55555555a000', nr_pages: 2, flags: 'PE_PRESENT' },
      { vaddr: '0x55555555e000', nr_pages: 1, flags: 'PE_PRESENT' },
      { vaddr: '0x7ffff7b00000', nr_pages: 4, flags: 'PE_PRESENT' },
      { vaddr: '0x7fffffffc000', nr_pages: 3, flags: 'PE_PRESENT' },
    ]);
  });

  it('crit x mems lists the exe and every VMA with its file', async () => {
    const out = await crit('x', dir, 'mems');
    const lines = out.split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
    expect(lines).toEqual(expect.arrayContaining([
      '4242',
      'exe /usr/local/bin/victim',
      '555555554000-555555556000 r-- /usr/local/bin/victim',
      '555555556000-555555558000 r-x /usr/local/bin/victim + 0x2000',
      '555555558000-55555555a000 rw- /usr/local/bin/victim + 0x4000',
      '55555555a000-55555557b000 rw-',
      '7ffff7a00000-7ffff7a10000 rw- /dev/shm/victim-data (s)',
      '7ffff7fc4000-7ffff7fc6000 r-x [vdso]',
      '7ffffffde000-7ffffffff000 rw- [stack]',
    ]));
    expect(lines.filter((l) => /^[0-9a-f]+-[0-9a-f]+ /.test(l))).toHaveLength(9);
  });

  it('crit x ps and crit x fds show the task, its fds, cwd and root', async () => {
    expect((await crit('x', dir, 'ps')).replace(/\s+/g, ' ').trim()).toBe('PID PGID SID COMM 4242 4242 4100 victim');
    const fds = (await crit('x', dir, 'fds')).split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
    expect(fds).toEqual(['4242', '0: /dev/null', '1: /dev/pts/3', '2: /var/log/victim.log', '3: /srv/app', 'cwd: /srv/app', 'root: /', '']);
  });
});

describe('crit reads the images of a multi-threaded task', () => {
  let dir = '';
  const task = makeThreadedTask();
  beforeAll(async () => {
    dir = (await makeCheckpoint(task)).dir;
  });
  afterAll(async () => removeDir(dir));

  // crit prints thread_core.blk_sigset as a plain JSON number; integers of 16 digits and more become
  // strings so that JSON.parse does not round them to a double.
  const decode = async (name: string): Promise<Decoded> =>
    JSON.parse((await crit('decode', '-i', path.join(dir, name), '--pretty')).replace(/(": )(\d{16,})\b/g, '$1"$2"')) as Decoded;

  it('pstree.img lists every thread, the main one first', async () => {
    const ps = await decode('pstree.img');
    expect(ps.entries).toEqual([{ pid: 4242, ppid: 0, pgid: 4242, sid: 4100, threads: [4242, 4243, 4250, 4251] }]);
  });

  it('decodes every core-<tid>.img: registers, FPU, signals, rseq of that thread, no task-wide parts', async () => {
    const files = (await fsp.readdir(dir)).filter((f) => /^core-\d+\.img$/.test(f)).sort();
    expect(files).toEqual(['core-4242.img', 'core-4243.img', 'core-4250.img', 'core-4251.img']);
    for (const t of task.threads) {
      const out = await decode(`core-${t.tid}.img`);
      expect(out.magic).toBe('CORE');
      expect(out.entries).toHaveLength(1);
      const c = out.entries[0] as any;
      expect(Object.keys(c).sort()).toEqual(['mtype', 'thread_core', 'thread_info']);
      expect(c.mtype).toBe('X86_64');
      const hex = (off: number): string => `0x${t.regs.readBigUInt64LE(off * 8).toString(16)}`;
      expect(c.thread_info.gpregs.ip).toBe(hex(16));
      expect(c.thread_info.gpregs.sp).toBe(hex(19));
      expect(c.thread_info.gpregs.orig_ax).toBe(hex(15));
      expect(c.thread_info.clear_tid_addr).toBe(`0x${t.clearChildTid.toString(16)}`);
      expect(c.thread_info.fpregs.mxcsr).toBe(0x1f80);
      expect(c.thread_info.fpregs.xsave.xstate_bv).toBe(Number(t.xsave.readBigUInt64LE(512)));
      expect(BigInt(c.thread_core.blk_sigset)).toBe(t.sigmask);
      expect(c.thread_core.futex_rla).toBe(t.robustList.head);
      expect(c.thread_core.futex_rla_len).toBe(t.robustList.len);
      expect(c.thread_core.sas).toEqual({ ss_sp: t.altstack.sp, ss_size: t.altstack.size, ss_flags: t.altstack.flags });
      if (t.rseq === null) {
        expect(c.thread_core).not.toHaveProperty('rseq_entry');
      } else {
        expect(c.thread_core.rseq_entry).toEqual({ rseq_abi_pointer: t.rseq.ptr, rseq_abi_size: t.rseq.size, signature: t.rseq.signature });
      }
    }
    // PKRU (bit 9) of thread 4251 reaches CRIU's field too.
    const pkru = ((await decode('core-4251.img')).entries[0] as any).thread_info.fpregs.xsave.pkru;
    expect(pkru).toEqual([task.threads[2].xsave.readUInt32LE(2688)]);
  });

  it('crit x ps shows the process once: crit lists tasks, not threads', async () => {
    // pycriu's explore_ps reads pstree entries and core-<pid>.img only; threads have no row there.
    expect((await crit('x', dir, 'ps')).replace(/\s+/g, ' ').trim()).toBe('PID PGID SID COMM 4242 4242 4100 victim');
  });
});
