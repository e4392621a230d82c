/**
 * The disk-pressure check on real processes and a real filesystem: a process holding 64 MiB of written
 * memory is expected to need about that much, and a 2 MiB tmpfs refuses it with both figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { waitFor } from '../testenv';
import { checkSpace, expectedImageBytes, freeBytes } from './space-check';

const MiB = 1 << 20;
let holder: ChildProcess;
let mnt: string;

beforeAll(async () => {
  // 64 MiB written (so present and anonymous), then it waits to be looked at.
  holder = spawn('python3', ['-c', 'import sys,time\nb = bytearray(b"x" * (64 << 20))\nprint("ready", flush=True)\ntime.sleep(300)'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  holder.stdout!.on('data', (d) => (out += d));
  await waitFor('the holder to write its memory', () => out.includes('ready'), 20_000);
  mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-space-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'cryopod-space-test', mnt]);
});

afterAll(() => {
  holder?.kill('SIGKILL');
  if (mnt) {
    execFileSync('umount', [mnt]);
    fs.rmdirSync(mnt);
  }
});

test('the expected image size follows the memory a process wrote', () => {
  const bytes = expectedImageBytes([holder.pid!]);
  expect(bytes).toBeGreaterThanOrEqual(64 * MiB);
  expect(bytes).toBeLessThan(128 * MiB); // python's own heap is a few MiB, the margin 5 %
  expect(expectedImageBytes([2 ** 22 + 12345])).toBe(0); // a process that is gone needs nothing
});

test('a filesystem with too little room refuses the dump with both figures; one with room passes', () => {
  expect(freeBytes(mnt)).toBeLessThanOrEqual(2 * MiB);
  expect(() => checkSpace(mnt, [{ container: 'app', pids: [holder.pid!] }])).toThrow(
    expect.objectContaining({ reason: 'InsufficientStorage', message: expect.stringMatching(new RegExp(`filesystem of ${mnt} has [0-9.]+ MiB free, the dump needs about [0-9.]+ MiB \\(app [0-9.]+ MiB\\); nothing was frozen`)) }),
  );
  expect(checkSpace(os.tmpdir(), [{ container: 'app', pids: [holder.pid!] }]).expected).toBeGreaterThanOrEqual(64 * MiB);
});
