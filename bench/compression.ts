/**
 * Does compressing memory images pay before they go to the store? `node dist/bench/compression.js [PID]`
 *
 * Reads the private writable memory of a real process (what a dump's pages images hold: heap, stacks,
 * anonymous mappings; by default a Python process started here that fills a heap with a million small
 * objects, or the PID given), up to 512 MiB, and measures on it, single-threaded, on this machine:
 *   gzip level 1 and brotli quality 1 (node:zlib: what Node 20 has; zstd arrives in node:zlib only in
 *   Node 22.15/23.8), and the zstd -1 and lz4 -1 command-line tools (the C libraries any binding would
 *   wrap), as compress MiB/s and ratio. Compression pays only if its rate beats the store's upload rate
 *   by the ratio's margin: time(compress) + size/ratio/upload < size/upload.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

const MiB = 1 << 20;
const LIMIT = 512 * MiB;

function privateWritable(pid: number): Buffer {
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n');
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for (const line of maps) {
      const [range, perms, , , inode, name = ''] = line.split(/\s+/);
      if (!perms.startsWith('rw') || perms[3] !== 'p' || name.startsWith('[v') || (inode !== '0' && !name.startsWith('['))) continue;
      const [lo, hi] = range.split('-').map((h) => Number.parseInt(h, 16));
      for (let at = lo; at < hi && total < LIMIT; at += 4 * MiB) {
        const buf = Buffer.alloc(Math.min(4 * MiB, hi - at, LIMIT - total));
        try {
          const n = fs.readSync(fd, buf, 0, buf.length, at);
          parts.push(buf.subarray(0, n));
          total += n;
        } catch {
          break; // unreadable (guard pages)
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return Buffer.concat(parts, total);
}

function rate(name: string, bytes: number, fn: () => number): { name: string; mibps: number; ratio: number } {
  const t0 = process.hrtime.bigint();
  const out = fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { name, mibps: bytes / MiB / s, ratio: bytes / out };
}

function viaCli(tool: string, args: string[], file: string): number {
  const r = spawnSync(tool, [...args, '-c', file], { maxBuffer: 2 * LIMIT });
  if (r.status !== 0) throw new Error(`${tool} failed: ${r.stderr}`);
  return r.stdout.length;
}

async function main(): Promise<void> {
  let pid = Number(process.argv[2]);
  let child;
  if (!pid) {
    child = spawn('python3', ['-c', 'import time,sys\nd={str(i): [i, str(i)*3, float(i)] for i in range(1500000)}\nprint("ready", flush=True)\ntime.sleep(600)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child!.stdout!.once('data', () => resolve()));
    pid = child.pid!;
  }
  try {
    const data = privateWritable(pid);
    const file = path.join(os.tmpdir(), `cryopod-compress-${process.pid}.bin`);
    fs.writeFileSync(file, data);
    const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    console.log(`sample: ${(data.length / MiB).toFixed(0)} MiB of private writable memory of ${comm} (pid ${pid})`);
    const rows = [
      rate('gzip -1 (node:zlib)', data.length, () => zlib.gzipSync(data, { level: 1 }).length),
      rate('brotli q1 (node:zlib)', data.length, () => zlib.brotliCompressSync(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length } }).length),
      rate('zstd -1 (C, 1 thread)', data.length, () => viaCli('zstd', ['-1', '-q', '-T1'], file)),
      rate('lz4 -1 (C)', data.length, () => viaCli('lz4', ['-1', '-q'], file)),
    ];
    for (const r of rows) console.log(`${r.name.padEnd(24)} ${r.mibps.toFixed(0).padStart(6)} MiB/s  ratio ${r.ratio.toFixed(2)}`);
    console.log('it pays when: 1/compressRate + 1/(ratio*uploadRate) < 1/uploadRate');
    fs.rmSync(file, { force: true });
    void execFileSync;
  } finally {
    child?.kill('SIGKILL');
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
