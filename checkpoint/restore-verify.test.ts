/**
 * The checkpoint library's restore (`cryopod restore`, and the node agent's) verifies the pages images
 * in the native fill (hashed in the same pass that writes them into the stopped stub, on every core)
 * instead of before the morph. These tests hold it to the
 * rule that replaced "verified before any page is mapped": a tampered pages image fails the restore with
 * the reader's ECHECKSUM naming the file, the half-built stub is killed, no process is left behind, and
 * the saved task never runs a single instruction.
 *
 *   sleeper (small image, one BLAKE3 chunk, one fill thread): dumped while asleep; if its restored copy
 *     ran at all, its interrupted 500 ms sleep would end and it would write <workdir>/progress. A byte
 *     flipped in pages-1.img: ECHECKSUM, no process left, and progress unchanged (none can write it now).
 *   memory (41 MiB image, 41 BLAKE3 chunks, every core filling): a byte flipped in the last chunk (the
 *     tamper is found only after nearly everything has been written): ECHECKSUM, no stub, no verdict.
 *     The untampered copy restores and passes the victim's own pattern and checksum check.
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  PAGE_SIZE,
  checkResult,
  checkpoint,
  childrenOf,
  cleanup,
  expectFailure,
  expectKilledByDump,
  isAlive,
  makeTempDir,
  procState,
  processesRunning,
  readFileOrUndefined,
  readProgress,
  restore,
  startVictim,
  waitFor,
  waitForProgress,
} from '../native/test/harness';
import { PAGES_CHUNK_BYTES, loadManifest } from '../images/manifest';
import { restoreProcess } from './restore';
import { hashFileChunked } from '../native/lib';

jest.setTimeout(120_000);

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

function copyDir(from: string): string {
  const to = makeTempDir('img-tampered');
  fs.cpSync(from, to, { recursive: true });
  return to;
}

/** Restores `dir`, which must fail with ECHECKSUM on pages-1.img from the native fill, leaving nothing. */
async function expectTamperFailure(dir: string): Promise<void> {
  const childrenBefore = new Set(childrenOf(process.pid));
  const stubsBefore = new Set(processesRunning('cryopod-stub'));
  const err = await expectFailure(restoreProcess({ dir }), 'ECHECKSUM', ['pages-1.img', /blake3 is [0-9a-f]{64}, the manifest says [0-9a-f]{64}/]);
  // Found by the fill (the stub existed and had its memory written), not by the reader beforehand.
  expect((err as Error & { file?: string }).file).toBe('pages-1.img');
  const cause = (err as Error).cause as { code?: string; op?: string; path?: string } | undefined;
  expect(cause?.code).toBe('ECHECKSUM');
  expect(cause?.op).toBe('verify');
  expect(path.basename(cause?.path ?? '')).toBe('pages-1.img');
  const leftovers = (): number[] => [
    ...childrenOf(process.pid).filter((p) => !childrenBefore.has(p)),
    ...processesRunning('cryopod-stub').filter((p) => !stubsBefore.has(p) && procState(p) !== 'Z'),
  ];
  await waitFor(() => leftovers().length === 0, 3_000, 'no process left behind by the failed restore');
}

describe('restore: pages images verified by the native fill', () => {
  afterEach(cleanup);

  test('a flipped byte in a one-chunk pages image: ECHECKSUM, and the task never runs', async () => {
    const v = await startVictim('sleeper');
    const seen = await waitForProgress(v.workdir, 0, 'the sleeper', 1);
    const cp = await checkpoint(v);
    await expectKilledByDump(v);
    const manifest = await loadManifest(cp.dir);
    const pages = manifest.files.find((f) => f.name === 'pages-1.img');
    // Manifest v3: pages images are listed by a chunked BLAKE3 the dump computed as it wrote them.
    expect(pages?.blake3).toMatch(/^[0-9a-f]{64}$/);
    expect(pages?.sha256).toBeUndefined();
    expect(pages?.size ?? Infinity).toBeLessThan(PAGES_CHUNK_BYTES);
    const progressAtDump = readProgress(v.workdir) ?? seen;

    const bad = copyDir(cp.dir);
    const size = fs.statSync(path.join(bad, 'pages-1.img')).size;
    flipByte(path.join(bad, 'pages-1.img'), size - PAGE_SIZE + 123);
    await expectTamperFailure(bad);
    // It never ran: a restored sleeper that ran would finish its interrupted 500 ms sleep and write
    // progress, and no process of the failed restore is left (expectTamperFailure waited for that), so
    // what is not written now never will be: nothing to wait for.
    expect(readProgress(v.workdir) ?? seen).toBe(progressAtDump);

    // Control: the same checkpoint, untampered, restores and runs on.
    const r = await restore(cp.dir);
    await waitForProgress(v.workdir, progressAtDump, 'the restored sleeper', 1);
    process.kill(r.pid, 'SIGKILL');
  });

  test('a flipped byte in the last chunk of a chunk-hashed pages image: ECHECKSUM; the intact copy passes its check', async () => {
    const v = await startVictim('memory');
    const cp = await checkpoint(v);
    await expectKilledByDump(v);
    const manifest = await loadManifest(cp.dir);
    const pages = manifest.files.find((f) => f.name === 'pages-1.img');
    expect(pages?.chunkBytes).toBe(PAGES_CHUNK_BYTES);
    expect(pages?.size ?? 0).toBeGreaterThan(PAGES_CHUNK_BYTES);
    // The dump hashed the image while it was written (the follower); hashed again at rest it agrees:
    // no byte was missed or hashed twice across the two chunks.
    expect(await hashFileChunked(path.join(cp.dir, 'pages-1.img'), 'blake3', PAGES_CHUNK_BYTES)).toBe(pages?.blake3);

    const bad = copyDir(cp.dir);
    flipByte(path.join(bad, 'pages-1.img'), (pages?.size ?? 0) - 7);
    await expectTamperFailure(bad);
    // No verdict, and none to come: every process of the failed restore is gone (waited for above).
    expect(readFileOrUndefined(path.join(v.workdir, 'result'))).toBeUndefined();

    const r = await restore(cp.dir);
    expect(isAlive(r.pid)).toBe(true);
    expect(await checkResult(r.pid, v.workdir)).toBe('PASS');
  });
});
