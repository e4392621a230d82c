/**
 * Lazy restore (`cryopod restore --lazy`, restoreProcess({ lazy })): the task runs before its private
 * anonymous memory is resident; the native pager serves each fault from the pages image after verifying
 * the whole 1 MiB chunk against the manifest's per-chunk BLAKE3 (native/src/core/lazy_pager.h).
 *
 *   memory (41 MiB, every kind of private memory), prefetcher on: runs, becomes fully resident, and
 *     passes its own pattern and checksum check; with its manifest made v3 (no per-chunk digests) it is
 *     restored eagerly and the restore says why.
 *   a chunk list rewritten to match a tampered chunk (the signed root left as it was): refused, ECHECKSUM.
 *   toucher (16 MiB it reads only when asked, page by page), prefetcher off (only faults bring pages in):
 *     - runs with its buffer not resident, and a page it is asked to read arrives intact;
 *     - a byte flipped in a page it has not touched: when it touches it, it is killed (SIGKILL) before
 *       it reads it (no report of that page, ever), and the restore's `resident` fails with ECHECKSUM
 *       naming the chunk and its bytes;
 *     - it forks before it is resident: a lazy restore does not serve a child's memory yet, so the task and
 *       its child are killed (EFORK) and the child never reports a page it read (it could only have read
 *       it as zeros, had the fork gone unseen);
 *     - the image cut short and removed under the running task (the bytes it has not touched are gone):
 *       touching them kills it, and `cryopod restore --lazy` (the command, detached) exits 1 naming the
 *       chunk and the cut. (Removed alone, the image is still served: the pager holds it open.)
 *     - the command stopped by SIGTERM before the task is resident kills the task and exits 1.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { checkResult, checkpoint, cleanup, expectKilledByDump, makeTempDir, readFileOrUndefined, readProgress, startVictim, trackPid, waitFor, waitForProgress, waitGone, type Victim } from '../native/test/harness';
import { PAGES_CHUNK_BYTES, hashFileChunks } from '../images/manifest';
import { readVerified, restoreProcess } from './restore';

jest.setTimeout(120_000);

const PAGE = 4096;
const CLI = path.resolve(__dirname, '../bin/cryopod.js');
const CONTROL_PAGE = 100; // read before the tampered one: arrives intact
const TOUCHED_PAGE = 3000; // the tampered (or cut-off) one: in another chunk, far from the control

function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] ^= 0x5a;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

/** A dumped toucher: its checkpoint and where page `i` of its buffer lies in pages-1.img. */
async function dumpedToucher(): Promise<{ v: Victim; dir: string; pagesFile: string; offsetOf: (i: number) => number }> {
  const v = await startVictim('toucher');
  const [, start] = (readFileOrUndefined(path.join(v.workdir, 'layout')) ?? '').trim().split(' ');
  const buf = parseInt(start, 16);
  const cp = await checkpoint(v);
  await expectKilledByDump(v);
  const { task } = await readVerified(cp.dir);
  const offsetOf = (i: number): number => {
    const addr = buf + i * PAGE;
    let off = 0;
    for (const r of task.pages) {
      if (addr >= r.vaddr && addr < r.vaddr + r.nrPages * PAGE) return off + (addr - r.vaddr);
      off += r.nrPages * PAGE;
    }
    throw new Error(`page ${i} of the buffer is not in the image`);
  };
  return { v, dir: cp.dir, pagesFile: path.join(cp.dir, 'pages-1.img'), offsetOf };
}

/** Restores the toucher lazily, pages brought in on fault only, and waits until it runs. */
async function restoreOnFaultOnly(v: Victim, dir: string): Promise<Awaited<ReturnType<typeof restoreProcess>>> {
  const before = readProgress(v.workdir) ?? 0;
  const r = await restoreProcess({ dir, lazy: { prefetch: false } });
  trackPid(r.pid);
  await waitForProgress(v.workdir, before, 'the lazily restored toucher', 2);
  return r;
}

/**
 * `cryopod restore --lazy` itself, detached (setsid -f, as the victims are), pages brought in on fault
 * only (CRYOPOD_LAZY_PREFETCH=0) so that the test decides when they are needed; resolves once the
 * restored toucher runs. Its exit status lands in a file.
 */
async function startLazyCli(v: Victim, dir: string): Promise<{ pid: number; cliPid: number; stderr: () => string; exitCode: () => Promise<string> }> {
  const before = readProgress(v.workdir) ?? 0;
  const io = makeTempDir('lazy-cli');
  const [out, err, rcFile, cliPidFile] = ['out', 'err', 'rc', 'cli.pid'].map((f) => path.join(io, f));
  const sh = `CRYOPOD_LAZY_PREFETCH=0 ${process.execPath} ${CLI} restore --dir ${dir} --lazy > ${out} 2> ${err} & echo $! > ${cliPidFile}; wait $!; echo $? > ${rcFile}`;
  const launcher = spawn('setsid', ['-f', 'sh', '-c', sh], { stdio: 'ignore', cwd: '/' });
  await new Promise((resolve) => launcher.on('exit', resolve));
  const cliPid = Number(await waitFor(() => readFileOrUndefined(cliPidFile)?.trim() || undefined, 10_000, 'the pid of cryopod restore --lazy'));
  trackPid(cliPid);
  const pid = Number(await waitFor(() => (/^(\d+)\n/.exec(readFileOrUndefined(out) ?? '') ?? [])[1], 30_000, 'the pid from cryopod restore --lazy'));
  trackPid(pid);
  await waitForProgress(v.workdir, before, 'the lazily restored toucher', 2);
  expect(readFileOrUndefined(err)).toMatch(/running after [\d.]+ ms \(verify [\d.]+ ms, morph [\d.]+ ms\); serving its pages/);
  return {
    pid,
    cliPid,
    stderr: () => readFileOrUndefined(err) ?? '',
    exitCode: async () => (await waitFor(() => readFileOrUndefined(rcFile), 30_000, 'cryopod restore --lazy to exit')).trim(),
  };
}

/** Asks the toucher to read page i of its buffer. */
function touch(v: Victim, i: number): void {
  fs.writeFileSync(path.join(v.workdir, '.touch.tmp'), `${i}\n`);
  fs.renameSync(path.join(v.workdir, '.touch.tmp'), path.join(v.workdir, 'touch'));
}

async function touched(v: Victim, i: number): Promise<string> {
  return (await waitFor(() => readFileOrUndefined(path.join(v.workdir, `touched-${i}`)), 10_000, `the toucher's report of page ${i}`)).trim();
}

function chunkOf(offset: number): string {
  const c = Math.floor(offset / PAGES_CHUNK_BYTES);
  return `chunk ${c} (bytes ${c * PAGES_CHUNK_BYTES}-`;
}

describe('lazy restore', () => {
  afterEach(cleanup);

  test('a lazily restored victim runs, becomes fully resident, and its memory is intact', async () => {
    const v = await startVictim('memory');
    const cp = await checkpoint(v);
    await expectKilledByDump(v);
    const r = await restoreProcess({ dir: cp.dir, lazy: true });
    trackPid(r.pid);
    expect(r.lazy?.eagerReason).toBeUndefined();
    const res = await r.lazy!.resident;
    expect(res.state).toBe('resident');
    // Every chunk came in once: some before it ran (chunks shared with file mappings' pages), the
    // rest on fault or by the prefetcher.
    expect(res.eagerChunks + res.faultChunks + res.prefetchedChunks).toBe(res.chunks);
    expect(res.chunks).toBe(Math.ceil(fs.statSync(path.join(cp.dir, 'pages-1.img')).size / PAGES_CHUNK_BYTES));
    expect(res.faultChunks + res.prefetchedChunks).toBeGreaterThan(0);
    expect(await checkResult(r.pid, v.workdir)).toBe('PASS');
  });

  test('a chunk list that does not hash to the root (a tampered chunk with its digest rewritten): ECHECKSUM, nothing runs', async () => {
    const { v, dir, pagesFile, offsetOf } = await dumpedToucher();
    const at = offsetOf(TOUCHED_PAGE);
    flipByte(pagesFile, at);
    // The forger rewrites that chunk's listed digest to match the tampered bytes, but cannot re-sign the
    // root (the seal covers blake3 and chunkBytes, not the list): the pager checks the list against it.
    const { chunks } = await hashFileChunks(pagesFile, PAGES_CHUNK_BYTES);
    const manifestFile = path.join(dir, 'cryopod-manifest.json');
    const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { files: Array<{ name: string; chunkBlake3?: string }> };
    const entry = m.files.find((f) => f.name === 'pages-1.img')!;
    const c = Math.floor(at / PAGES_CHUNK_BYTES);
    entry.chunkBlake3 = entry.chunkBlake3!.slice(0, c * 64) + chunks.slice(c * 64, c * 64 + 64) + entry.chunkBlake3!.slice(c * 64 + 64);
    fs.writeFileSync(manifestFile, JSON.stringify(m));
    const progress = readProgress(v.workdir);
    const err = await restoreProcess({ dir, lazy: true }).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect((err as { code?: string } | undefined)?.code).toBe('ECHECKSUM');
    expect(err?.message).toMatch(/the manifest's chunk digests do not hash to its blake3 [0-9a-f]{64}/);
    // Refused in the morph, before the task's registers were loaded: the half-built stub is killed and
    // the toucher's code never ran (it would have counted on).
    expect(readProgress(v.workdir)).toBe(progress);
  });

  test('a checkpoint without per-chunk digests (manifest v3) is restored eagerly, and says why', async () => {
    const v = await startVictim('memory');
    const cp = await checkpoint(v);
    await expectKilledByDump(v);
    const manifestFile = path.join(cp.dir, 'cryopod-manifest.json');
    const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { formatVersion: number; files: Array<{ chunkBlake3?: string }> };
    m.formatVersion = 3;
    for (const f of m.files) delete f.chunkBlake3;
    fs.writeFileSync(manifestFile, JSON.stringify(m));
    const r = await restoreProcess({ dir: cp.dir, lazy: true });
    trackPid(r.pid);
    expect(r.lazy?.eagerReason).toMatch(/lists no per-chunk digests .*older than manifest v4/);
    expect((await r.lazy!.resident).state).toBe('resident');
    expect(await checkResult(r.pid, v.workdir)).toBe('PASS');
  });

  test('served on fault only: it runs before its buffer is resident, and a page it reads arrives intact', async () => {
    const { v, dir } = await dumpedToucher();
    const r = await restoreOnFaultOnly(v, dir);
    touch(v, CONTROL_PAGE);
    expect(await touched(v, CONTROL_PAGE)).toBe('ok');
    // The check reads every page of the buffer: all of it faulted in, each chunk verified.
    expect(await checkResult(r.pid, v.workdir)).toBe('PASS');
    // The buffer is nearly all of the image: once the check read it, faults alone made it resident.
    const res = await r.lazy!.resident;
    expect(res.state).toBe('resident');
    expect(res.prefetchedChunks).toBe(0);
    expect(res.eagerChunks + res.faultChunks).toBe(res.chunks);
    expect(res.faultChunks).toBeGreaterThanOrEqual(Math.floor((16 << 20) / PAGES_CHUNK_BYTES) - 1);
  });

  test('a tampered page it has not touched yet: it dies when it touches it, never seeing the bad byte', async () => {
    const { v, dir, pagesFile, offsetOf } = await dumpedToucher();
    const at = offsetOf(TOUCHED_PAGE) + 123;
    expect(Math.floor(at / PAGES_CHUNK_BYTES)).not.toBe(Math.floor(offsetOf(CONTROL_PAGE) / PAGES_CHUNK_BYTES));
    flipByte(pagesFile, at);
    const r = await restoreOnFaultOnly(v, dir);
    touch(v, CONTROL_PAGE);
    expect(await touched(v, CONTROL_PAGE)).toBe('ok');

    touch(v, TOUCHED_PAGE);
    const err = (await r.lazy!.resident.then(
      () => undefined,
      (e: Error & { code?: string; file?: string }) => e,
    )) as (Error & { code?: string; file?: string }) | undefined;
    expect(err?.code).toBe('ECHECKSUM');
    expect(err?.file).toBe('pages-1.img');
    expect(err?.message).toContain(chunkOf(at));
    expect(err?.message).toMatch(/blake3 is [0-9a-f]{64}, the manifest says [0-9a-f]{64}; pid \d+ was killed/);
    expect(await waitGone(r.pid, 'the toucher that touched a tampered page')).toEqual({ code: null, signal: 9 });
    // Killed in the fault: it never returned to read the page, so it never reported it, and now never will.
    expect(readFileOrUndefined(path.join(v.workdir, `touched-${TOUCHED_PAGE}`))).toBeUndefined();
  });

  test('a fork before it is fully resident: the task and its child are killed (EFORK), the child never reads a missing page', async () => {
    const { v, dir } = await dumpedToucher();
    const r = await restoreOnFaultOnly(v, dir);
    fs.writeFileSync(path.join(v.workdir, '.fork.tmp'), `${TOUCHED_PAGE}\n`);
    fs.renameSync(path.join(v.workdir, '.fork.tmp'), path.join(v.workdir, 'fork'));
    const err = (await r.lazy!.resident.then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    )) as (Error & { code?: string }) | undefined;
    expect(err?.code).toBe('EFORK');
    expect(err?.message).toMatch(/pid \d+ forked before it was fully resident: a lazy restore does not serve a child's memory yet/);
    expect(await waitGone(r.pid, 'the toucher that forked')).toEqual({ code: null, signal: 9 });
    const child = Number(readFileOrUndefined(path.join(v.workdir, 'child-pid'))?.trim() ?? '0');
    if (child > 0) {
      trackPid(child);
      await waitGone(child, 'its child');
    }
    // Both are gone: what the child did not report now, it never will.
    expect(readFileOrUndefined(path.join(v.workdir, `child-touched-${TOUCHED_PAGE}`))).toBeUndefined();
    expect(readFileOrUndefined(path.join(v.workdir, 'forked'))).toBeUndefined();
  });

  test('cryopod restore --lazy stopped (SIGTERM) before the task is resident: it kills the task and exits 1', async () => {
    const { v, dir } = await dumpedToucher();
    const cli = await startLazyCli(v, dir);
    process.kill(cli.cliPid, 'SIGTERM');
    expect(await cli.exitCode()).toBe('1');
    expect(await waitGone(cli.pid, 'the toucher whose server stopped')).toEqual({ code: null, signal: 9 });
    expect(cli.stderr()).toMatch(/lazy restore stopped \(cryopod restore got SIGTERM\) before pid \d+ was fully resident; it was killed \[EABORTED\]/);
  });

  test('the image cut short and removed mid-way: the task is killed when it needs what is gone; the command fails naming the chunk', async () => {
    const { v, dir, pagesFile, offsetOf } = await dumpedToucher();
    const cut = Math.floor(offsetOf(TOUCHED_PAGE - 500) / PAGES_CHUNK_BYTES) * PAGES_CHUNK_BYTES;
    const cli = await startLazyCli(v, dir);
    fs.truncateSync(pagesFile, cut);
    fs.unlinkSync(pagesFile);
    touch(v, TOUCHED_PAGE);
    expect(await cli.exitCode()).toBe('1');
    expect(await waitGone(cli.pid, 'the toucher whose image was cut')).toEqual({ code: null, signal: 9 });
    const errors = cli.stderr();
    expect(errors).toContain(chunkOf(offsetOf(TOUCHED_PAGE)));
    expect(errors).toMatch(new RegExp(`the image ends at byte ${cut} .*was killed \\[EBOUNDS\\]`));
    expect(errors).not.toMatch(/fully resident/);
    expect(readFileOrUndefined(path.join(v.workdir, `touched-${TOUCHED_PAGE}`))).toBeUndefined();
  });
});
