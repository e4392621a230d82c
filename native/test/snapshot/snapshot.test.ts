/**
 * Short freeze (issue: milliseconds of downtime): a task checkpointed with --leave-running is frozen only
 * while the parasite forks a copy-on-write snapshot; its pages are written after it runs again. The
 * image must still be one consistent instant: gen-writer, which rewrites its memory continuously and
 * checks every page against its neighbours' generation, is dumped while running, restored, and must find
 * no page from another instant — 20 times in a row, single- and multi-threaded. A negative control
 * (an image spliced from two instants) shows the check does fail when it should.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { dumpProcess, restoreProcess } from '../../../checkpoint';
import { MANIFEST_FILE, PAGES_FILE } from '../../../images';
import { sha256Of } from '../../../images/manifest';

const WRITER = path.join(__dirname, 'bin', 'gen-writer');
const started: number[] = [];

function state(pid: number): string | undefined {
  try {
    return /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 30000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts gen-writer detached (a dumper must not be its parent) and waits until it is ready. */
async function startWriter(dir: string, mib: number, threads: number): Promise<number> {
  execFileSync('/bin/sh', ['-c', 'setsid "$0" "$@" </dev/null >/dev/null 2>&1 &', WRITER, dir, String(mib), String(threads)]);
  const pid = await waitFor('gen-writer ready', () => {
    const f = path.join(dir, 'ready');
    return fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8').trim()) : undefined;
  });
  started.push(pid);
  return pid;
}

async function killAndWait(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitFor(`pid ${pid} to exit`, () => (state(pid) === undefined || state(pid) === 'Z' ? true : undefined));
}

async function resultOf(dir: string): Promise<string> {
  fs.writeFileSync(path.join(dir, 'check'), '');
  return waitFor('gen-writer result', () => {
    const f = path.join(dir, 'result');
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim() : undefined;
  });
}

afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

describe.each([
  ['single-threaded', 1],
  ['multi-threaded', 4],
])('short freeze of a %s writer', (_name, threads) => {
  test('is one consistent instant, 20 times in a row', async () => {
    for (let i = 0; i < 20; i++) {
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-gen-'));
      const images = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-gen-img-'));
      try {
        const pid = await startWriter(work, 32, threads);
        const s = await dumpProcess({ pid, dir: images, leaveRunning: true });
        // The writer ran on during the drain, so the kernel copied pages for it: the short freeze happened.
        expect(s.snapshotPrivateBytes).toBeGreaterThan(0);
        expect(state(pid)).not.toMatch(/[tTZ]/);
        await killAndWait(pid);
        const r = await restoreProcess({ dir: images });
        started.push(r.pid);
        expect(await resultOf(work)).toBe('PASS');
      } finally {
        fs.rmSync(work, { recursive: true, force: true });
        fs.rmSync(images, { recursive: true, force: true });
      }
    }
  }, 300000);
});

test('negative control: an image spliced from two instants is caught by the writer', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-gen-'));
  const a = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-gen-a-'));
  const b = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-gen-b-'));
  try {
    const pid = await startWriter(work, 32, 1);
    await dumpProcess({ pid, dir: a, leaveRunning: true });
    await new Promise((r) => setTimeout(r, 300));
    await dumpProcess({ pid, dir: b, leaveRunning: true });
    await killAndWait(pid);
    // Same layout both times (the writer maps nothing new): take the second half of the pages from b.
    const pa = fs.readFileSync(path.join(a, PAGES_FILE));
    const pb = fs.readFileSync(path.join(b, PAGES_FILE));
    expect(pb.length).toBe(pa.length);
    const half = Math.floor(pa.length / 2 / 4096) * 4096;
    pb.copy(pa, half, half);
    fs.writeFileSync(path.join(a, PAGES_FILE), pa);
    const manifest = JSON.parse(fs.readFileSync(path.join(a, MANIFEST_FILE), 'utf8'));
    const entry = manifest.files.find((f: { name: string }) => f.name === PAGES_FILE);
    entry.sha256 = sha256Of(pa); // whole-file, so no chunked-hash marker (manifest v2) and no v3 blake3
    delete entry.chunkBytes;
    delete entry.blake3;
    fs.writeFileSync(path.join(a, MANIFEST_FILE), JSON.stringify(manifest));
    const r = await restoreProcess({ dir: a });
    started.push(r.pid);
    expect(await resultOf(work)).toMatch(/^FAIL: .*generation/);
  } finally {
    for (const d of [work, a, b]) fs.rmSync(d, { recursive: true, force: true });
  }
}, 120000);
