/**
 * Process trees, copy-on-write sharing, shared memory, and real programs nobody here wrote, each
 * checkpointed with the CLI library (dumpProcess dumps the whole tree), killed, restored and checked.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { dumpProcess, restoreProcess } from '../../../checkpoint';

const BIN = path.join(__dirname, 'bin');
const started = new Set<number>();
const dirs: string[] = [];

function tmp(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

function alive(pid: number): boolean {
  try {
    const s = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return s !== undefined && s !== 'Z' && s !== 'X';
  } catch {
    return false;
  }
}

function stat(pid: number): { ppid: number; pgid: number; sid: number } {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]) };
}

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 30000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Execs a program with only stdio open: fds this test process inherited (a pipe from whatever started
 * it) would be refused by the dump as a pipe shared with a process outside the tree.
 */
const CLEAN_EXEC = ['/usr/bin/python3', '-c', 'import os, sys; os.closerange(3, 65536); os.execv(sys.argv[1], sys.argv[1:])'];

/** Starts a program detached (not our child: see docs/native.md), waits for <workdir>/ready. */
async function start(file: string, args: string[], workdir: string): Promise<string> {
  execFileSync('/bin/sh', ['-c', 'setsid "$@" </dev/null >/dev/null 2>&1 &', 'sh', ...CLEAN_EXEC, file, ...args]);
  return waitFor(`${path.basename(file)} ready`, () => {
    const f = path.join(workdir, 'ready');
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim() : undefined;
  });
}

async function verdict(workdir: string): Promise<string> {
  fs.writeFileSync(path.join(workdir, 'check'), '');
  return waitFor('a verdict', () => {
    const f = path.join(workdir, 'result');
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim() : undefined;
  });
}

async function gone(pids: number[]): Promise<void> {
  await waitFor('the dumped processes to be reaped', () => (pids.every((p) => !fs.existsSync(`/proc/${p}`)) ? true : undefined), 15000);
}

afterEach(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  started.clear();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

test('a three-process pipe chain comes back with its PIDs, parents, group, session and pipes', async () => {
  const work = tmp('cryopod-tree-');
  const ids = (await start(path.join(BIN, 'tree-pipe'), [work], work)).split(' ').map(Number);
  ids.forEach((p) => started.add(p));
  const [parent, child, grandchild] = ids;
  const before = ids.map(stat);
  const images = tmp('cryopod-tree-img-');
  const s = await dumpProcess({ pid: parent, dir: images });
  expect(s.tasks).toBe(3);
  await gone(ids);
  const r = await restoreProcess({ dir: images });
  expect(r.pid).toBe(parent);
  for (const p of ids) expect(alive(p)).toBe(true);
  expect(ids.map(stat)).toEqual(before);
  expect(stat(child).ppid).toBe(parent);
  expect(stat(grandchild).ppid).toBe(child);
  expect(await verdict(work)).toBe('PASS');
}, 120000);

test('a tree frozen through its cgroup (v2) is dumped at one instant and thawed after', async () => {
  const work = tmp('cryopod-tree-cg-');
  const ids = (await start(path.join(BIN, 'tree-pipe'), [work], work)).split(' ').map(Number);
  ids.forEach((p) => started.add(p));
  const cg = fs.mkdtempSync('/sys/fs/cgroup/unified/cryopod-test-');
  try {
    for (const p of ids) fs.writeFileSync(path.join(cg, 'cgroup.procs'), String(p));
    const images = tmp('cryopod-tree-cg-img-');
    const s = await dumpProcess({ pid: ids[0], dir: images, leaveRunning: true, freezer: { kind: 'v2', path: cg } });
    expect(s.tasks).toBe(3);
    expect(fs.readFileSync(path.join(cg, 'cgroup.events'), 'utf8')).toMatch(/^frozen 0$/m);
    for (const p of ids) expect(alive(p)).toBe(true);
    for (const p of ids) process.kill(p, 'SIGKILL');
    await gone(ids);
    await restoreProcess({ dir: images });
    expect(await verdict(work)).toBe('PASS');
  } finally {
    for (const p of ids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitFor('the test cgroup to empty', () => (fs.readFileSync(path.join(cg, 'cgroup.procs'), 'utf8').trim() === '' ? true : undefined), 10000).catch(() => undefined);
    fs.rmdirSync(cg);
  }
}, 120000);

test('copy-on-write pages stay shared and MAP_SHARED / memfd memory is seen by both sides after restore', async () => {
  const work = tmp('cryopod-cow-');
  const [parent, child, region] = (await start(path.join(BIN, 'cow-shm'), [work], work)).split(' ');
  started.add(Number(parent));
  started.add(Number(child));
  const images = tmp('cryopod-cow-img-');
  await dumpProcess({ pid: Number(parent), dir: images });
  // The child's private copy-on-write pages are not dumped again: its pages image is small.
  const sizes = fs.readdirSync(images).filter((f) => /^pages-\d+\.img$/.test(f)).map((f) => fs.statSync(path.join(images, f)).size);
  expect(Math.max(...sizes)).toBeGreaterThanOrEqual(16 << 20);
  expect(Math.min(...sizes)).toBeLessThan(1 << 20);
  await gone([Number(parent), Number(child)]);
  await restoreProcess({ dir: images });
  // Same physical pages in both processes for the 16 MiB region written before fork.
  const pages = (16 << 20) / 4096;
  const pfns = (pid: string): bigint[] => {
    const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
    const buf = Buffer.alloc(pages * 8);
    fs.readSync(fd, buf, 0, buf.length, (Number(BigInt(region)) / 4096) * 8);
    fs.closeSync(fd);
    return Array.from({ length: pages }, (_, i) => buf.readBigUInt64LE(i * 8) & ((1n << 55n) - 1n));
  };
  const a = pfns(parent);
  const b = pfns(child);
  const shared = a.filter((pfn, i) => pfn !== 0n && pfn === b[i]).length;
  expect(shared / pages).toBeGreaterThan(0.99);
  expect(await verdict(work)).toBe('PASS');
}, 120000);

test('a SysV shared memory segment comes back with its key and id, shared by parent and child', async () => {
  const work = tmp('cryopod-sysv-');
  const [parent, child, shmid] = (await start(path.join(BIN, 'sysv-shm'), [work], work)).split(' ').map(Number);
  started.add(parent);
  started.add(child);
  const images = tmp('cryopod-sysv-img-');
  try {
    await dumpProcess({ pid: parent, dir: images });
    await gone([parent, child]);
    await restoreProcess({ dir: images });
    expect(await verdict(work)).toBe('PASS');
  } finally {
    spawnSync('ipcrm', ['-m', String(shmid)]);
  }
}, 120000);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function get(port: number, file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: `/${file}`, timeout: 5000 }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

async function getWhenUp(port: number, file: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    try {
      return await get(port, file);
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing answered on port ${port}`);
}

test('python3 -m http.server answers on its port after restore', async () => {
  const root = tmp('cryopod-www-');
  fs.writeFileSync(path.join(root, 'hello.txt'), 'hello from before the checkpoint\n');
  const port = await freePort();
  const out = spawnSync(
    '/bin/sh',
    ['-c', 'cd "$0" && setsid "$@" </dev/null >/dev/null 2>&1 & echo $!', root, ...CLEAN_EXEC, '/usr/bin/python3', '-m', 'http.server', String(port), '--bind', '127.0.0.1'],
    { encoding: 'utf8' },
  );
  const pid = Number(out.stdout.trim());
  started.add(pid);
  const body = await getWhenUp(port, 'hello.txt');
  expect(body).toBe('hello from before the checkpoint\n');
  const images = tmp('cryopod-www-img-');
  await dumpProcess({ pid, dir: images });
  await gone([pid]);
  await expect(get(port, 'hello.txt')).rejects.toThrow();
  const r = await restoreProcess({ dir: images });
  started.add(r.pid);
  fs.writeFileSync(path.join(root, 'after.txt'), 'served by the restored process\n');
  expect(await get(port, 'after.txt')).toBe('served by the restored process\n');
}, 120000);

test('a multi-threaded python3 program goes on with every thread after restore', async () => {
  const work = tmp('cryopod-pythreads-');
  const script = path.join(work, 'threads.py');
  fs.writeFileSync(
    script,
    [
      'import os, sys, threading, time',
      'work = sys.argv[1]',
      'counts = [0, 0, 0]',
      'def run(i):',
      '    while True:',
      '        counts[i] += 1',
      '        time.sleep(0.01)',
      'for i in range(3):',
      '    threading.Thread(target=run, args=(i,), daemon=True).start()',
      'open(os.path.join(work, "ready.tmp"), "w").write(str(os.getpid()))',
      'os.rename(os.path.join(work, "ready.tmp"), os.path.join(work, "ready"))',
      'while not os.path.exists(os.path.join(work, "check")):',
      '    time.sleep(0.02)',
      'base = list(counts)',
      'time.sleep(0.5)',
      'moved = [c > b for c, b in zip(counts, base)]',
      'result = "PASS" if all(moved) and threading.active_count() == 4 else "FAIL: %r %d" % (moved, threading.active_count())',
      'open(os.path.join(work, "result.tmp"), "w").write(result)',
      'os.rename(os.path.join(work, "result.tmp"), os.path.join(work, "result"))',
    ].join('\n'),
  );
  const pid = Number(await start('/usr/bin/python3', [script, work], work));
  started.add(pid);
  await new Promise((r) => setTimeout(r, 300));
  const threads = fs.readdirSync(`/proc/${pid}/task`).length;
  expect(threads).toBe(4);
  const images = tmp('cryopod-pythreads-img-');
  await dumpProcess({ pid, dir: images });
  await gone([pid]);
  const r = await restoreProcess({ dir: images });
  expect(r.pid).toBe(pid);
  expect(fs.readdirSync(`/proc/${pid}/task`).length).toBe(4);
  expect(await verdict(work)).toBe('PASS');
}, 120000);

test('objects shared between parent and child come back shared: socketpairs across the tree with bytes queued both ways, an inherited listener, one open file', async () => {
  const work = tmp('cryopod-unix-tree-');
  const [parent, child] = (await start(path.join(BIN, 'unix-tree'), [work], work)).split(' ').map(Number);
  started.add(parent);
  started.add(child);
  const images = tmp('cryopod-unix-tree-img-');
  const s = await dumpProcess({ pid: parent, dir: images });
  expect(s.tasks).toBe(2);
  await gone([parent, child]);

  // One file_entry per open file, referred to by each holder's fdinfo (as CRIU writes it), which crit reads.
  const decode = (img: string): { entries: Array<{ id: number; fd: number; type: string }> } =>
    JSON.parse(execFileSync('/usr/bin/crit', ['decode', '-i', path.join(images, img)], { encoding: 'utf8' }));
  const parentFds = decode('fdinfo-1.img').entries;
  const childFds = decode('fdinfo-2.img').entries;
  const idOf = (fds: typeof parentFds, fd: number): number => fds.find((e) => e.fd === fd)!.id;
  const byType = (fds: typeof parentFds, type: string): number[] => [...new Set(fds.filter((e) => e.type === type).map((e) => e.id))];
  const sharedUnix = byType(parentFds, 'UNIXSK').filter((id) => byType(childFds, 'UNIXSK').includes(id));
  expect(sharedUnix).toHaveLength(1); // the listener (its dup at fd 9 in the parent refers to it too)
  expect(parentFds.filter((e) => e.id === sharedUnix[0]).map((e) => e.fd)).toContain(9);
  const sharedReg = byType(parentFds, 'REG').filter((id) => byType(childFds, 'REG').includes(id));
  expect(sharedReg.length).toBeGreaterThanOrEqual(1); // shared.txt (and stdio's /dev/null)
  expect(idOf(parentFds, 9)).toBe(sharedUnix[0]);

  const r = await restoreProcess({ dir: images });
  expect(r.pid).toBe(parent);
  for (const p of [parent, child]) expect(alive(p)).toBe(true);
  expect(stat(child).ppid).toBe(parent);
  const answer = new Promise<string>((resolve, reject) => {
    const c = net.connect(path.join(work, 'listen.sock'));
    let got = '';
    c.on('data', (d) => (got += d));
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
  expect(await verdict(work)).toBe('PASS');
  expect(await answer).toBe('served by the child');
}, 120000);

test('a tree of another user maps its files with that user\'s rights on restore: a file it may no longer open fails the restore, leaving nothing', async () => {
  const work = tmp('cryopod-tree-fsuid-');
  fs.chmodSync(work, 0o777);
  const mapped = path.join(work, 'mapped');
  fs.writeFileSync(mapped, Buffer.alloc(4096, 7), { mode: 0o666 });
  fs.chmodSync(mapped, 0o666);
  const script = `import mmap, os, sys, time
w = sys.argv[1]
f = open(w + '/mapped', 'r+b')
m = mmap.mmap(f.fileno(), 4096, mmap.MAP_SHARED)
f.close()
child = os.fork()
if child == 0:
    time.sleep(600)
open(w + '/ready', 'w').write('%d %d' % (os.getpid(), child))
time.sleep(600)`;
  const ids = (await start('/usr/bin/setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', '/usr/bin/python3', '-c', script, work], work)).split(' ').map(Number);
  ids.forEach((p) => started.add(p));
  const images = tmp('cryopod-tree-fsuid-img-');
  await dumpProcess({ pid: ids[0], dir: images });
  await gone(ids);
  fs.chmodSync(mapped, 0o600); // root's only now
  await expect(restoreProcess({ dir: images })).rejects.toThrow(/mapped.*Permission denied|Permission denied.*mapped/);
  await gone(ids); // the failed restore's stubs are killed: their PIDs come free again
  fs.chmodSync(mapped, 0o666);
  const r = await restoreProcess({ dir: images });
  expect(r.pid).toBe(ids[0]);
  for (const p of ids) expect(alive(p)).toBe(true);
  expect(Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${ids[1]}/status`, 'utf8'))![1])).toBe(65534);
}, 120000);
