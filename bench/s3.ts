/**
 * Store throughput against a real MinIO on loopback: `node dist/bench/s3.js [--mib 1024] [--repeat 2]`
 *
 * 1. A sealed checkpoint of MIB MiB (one large pages image, as a real dump has) is uploaded and downloaded
 *    through the image store (store/), and the same bytes are put and got with the plain SDK (lib-storage
 *    Upload with the same part size and parallelism; GetObject streamed to a file) in the same run, as a
 *    ratio (the target is >= 0.9), with encryption off and on. Each rate is the best of --repeat runs (the
 *    machine is shared), the variants alternating.
 * 2. The agent's memory during an upload of that checkpoint: the calls the agent makes (upload-once.ts),
 *    in a process of their own, VmRSS sampled from /proc/PID/status every 20 ms (target < 128 MiB).
 * 3. Restore of a real MIB MiB process (bench/victim) from the store against a restore from a local
 *    directory, both in fresh processes until the restored process runs (store-restore-once.ts,
 *    restore-once.ts; target: within 1.5x).
 * MinIO keeps its data in /dev/shm when there is room, so the disk does not decide.
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { keyRingFrom } from '../store/cipher';
import { openStore } from '../store/open-store';
import { startMinio } from './minio-server';
import { keyPair, makeCheckpoint } from './sample-checkpoint';
import { dumpProcess } from '../checkpoint';
import type { KeyObject } from 'node:crypto';
import type { Minio } from './minio-server';

const MiB = 1 << 20;
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};

async function timed(bytes: number, fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return bytes / MiB / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function main(): Promise<void> {
  const mib = arg('mib', 1024);
  const repeat = arg('repeat', 2);
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'cryopod-bench-s3-'));
  const minio = await startMinio({ dataParent: os.freemem() > 6 * mib * MiB ? '/dev/shm' : undefined });
  const bucket = 'bench';
  await minio.createBucket(bucket);
  const s3 = { ...minio.s3, partBytes: 8 * MiB, parallelParts: 4 };
  const sdk = new S3Client({ endpoint: minio.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId!, secretAccessKey: s3.secretAccessKey! } });
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  try {
    const signer = keyPair().privateKey;
    const ring = keyRingFrom({ current: 'bench', keys: { bench: Buffer.alloc(32, 7).toString('base64') } });
    const src = path.join(work, 'plain');
    const srcEnc = path.join(work, 'enc');
    await makeCheckpoint(src, { key: signer, pagesBytes: mib * MiB });
    await makeCheckpoint(srcEnc, { key: signer, pagesBytes: mib * MiB, encryptionKeyId: 'bench' });
    const bytes = mib * MiB;
    const pages = path.join(src, 'app', 'pages-1.img');
    const stores = { plain: openStore(`s3://${bucket}/cp`, { s3 }), enc: openStore(`s3://${bucket}/cp`, { s3, keys: ring }) };
    const best = { sdkPut: 0, sdkGet: 0, put: 0, get: 0, encPut: 0, encGet: 0 };
    let n = 0;
    let rssPlain = 0;
    let rssEnc = 0;
    // Each repeat runs every variant once, alternating, so all see the shared machine in the same state.
    for (let i = 0; i < repeat; i++) {
      const sdkKey = `sdk/${++n}`;
      best.sdkPut = Math.max(best.sdkPut, await timed(bytes, () => new Upload({ client: sdk, params: { Bucket: bucket, Key: sdkKey, Body: createReadStream(pages, { highWaterMark: MiB }) }, partSize: s3.partBytes, queueSize: s3.parallelParts }).done()));
      peakRss = 0;
      const plainKey = `run-${++n}`;
      best.put = Math.max(best.put, await timed(bytes, () => stores.plain.upload(plainKey, src)));
      rssPlain = Math.max(rssPlain, peakRss);
      peakRss = 0;
      const encKey = `run-${++n}`;
      best.encPut = Math.max(best.encPut, await timed(bytes, () => stores.enc.upload(encKey, srcEnc)));
      rssEnc = Math.max(rssEnc, peakRss);
      const out = path.join(work, `sdk-get-${++n}`);
      best.sdkGet = Math.max(best.sdkGet, await timed(bytes, async () => {
        const res = await sdk.send(new GetObjectCommand({ Bucket: bucket, Key: sdkKey }));
        await pipeline(res.Body as Readable, createWriteStream(out));
      }));
      await fsp.rm(out);
      for (const [store, key, field] of [[stores.plain, plainKey, 'get'], [stores.enc, encKey, 'encGet']] as const) {
        const dl = path.join(work, `dl-${++n}`);
        best[field] = Math.max(best[field], await timed(bytes, () => store.download(key, dl)));
        await fsp.rm(dl, { recursive: true });
        await store.remove(key);
      }
    }
    console.log(`checkpoint: ${mib} MiB pages image + small files; MinIO on 127.0.0.1; part ${s3.partBytes / MiB} MiB x ${s3.parallelParts}; best of ${repeat}, variants alternating`);
    console.log(`plain SDK          put ${best.sdkPut.toFixed(0)} MiB/s   get ${best.sdkGet.toFixed(0)} MiB/s`);
    const row = (label: string, put: number, get: number, rss: number): void =>
      console.log(`${label.padEnd(18)} put ${put.toFixed(0)} MiB/s (${(put / best.sdkPut).toFixed(2)} of SDK)   get ${get.toFixed(0)} MiB/s (${(get / best.sdkGet).toFixed(2)} of SDK)   peak RSS of this process in its uploads ${(rss / MiB).toFixed(0)} MiB`);
    row('store', best.put, best.get, rssPlain);
    row('store+AES-GCM', best.encPut, best.encGet, rssEnc);

    const secretPlain = await secretDir(work, 'secret-plain', minio, signer);
    const secretEnc = await secretDir(work, 'secret-enc', minio, signer, { current: 'bench', keys: { bench: Buffer.alloc(32, 7).toString('base64') } });
    for (const [label, secret] of [['plain', secretPlain], ['AES-GCM', secretEnc]] as const) {
      let peak = 0;
      let hwm = 0;
      let mibs = 0;
      for (let i = 0; i < repeat; i++) {
        const r = await uploadInOwnProcess(label === 'plain' ? src : srcEnc, `s3://${bucket}/agent`, `rss-${++n}`, secret);
        peak = Math.max(peak, r.sampledPeak);
        hwm = Math.max(hwm, r.peakKiB * 1024);
        mibs = Math.max(mibs, bytes / MiB / r.seconds);
      }
      console.log(`agent upload (${label.padEnd(7)}) in its own process, store defaults: ${mibs.toFixed(0)} MiB/s, RSS sampled from /proc peak ${(peak / MiB).toFixed(0)} MiB (VmHWM ${(hwm / MiB).toFixed(0)} MiB; target < 128 MiB)`);
    }
    await fsp.rm(src, { recursive: true, force: true });
    await fsp.rm(srcEnc, { recursive: true, force: true });
    await restoreComparison(work, mib, repeat, bucket, secretPlain);
  } finally {
    clearInterval(sampler);
    sdk.destroy();
    await minio.stop();
    await fsp.rm(work, { recursive: true, force: true });
  }
}

/** A Secret directory as the kubelet mounts it (store/credentials.ts), for the child processes. */
async function secretDir(work: string, name: string, minio: Minio, signer: KeyObject, keys?: object): Promise<string> {
  const dir = path.join(work, name);
  await fsp.mkdir(dir, { mode: 0o700 });
  await fsp.writeFile(path.join(dir, 's3-access-key-id'), minio.s3.accessKeyId!);
  await fsp.writeFile(path.join(dir, 's3-secret-access-key'), minio.s3.secretAccessKey!);
  await fsp.writeFile(path.join(dir, 's3-endpoint'), minio.endpoint);
  await fsp.writeFile(path.join(dir, 'signing-key.pem'), signer.export({ type: 'pkcs8', format: 'pem' }));
  if (keys) await fsp.writeFile(path.join(dir, 'encryption-keys.json'), JSON.stringify(keys));
  return dir;
}

function rssOf(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // exited
  }
}

/** Runs one child to its end, sampling its RSS; resolves with its JSON line and the sampled peak. */
function runChild<T>(script: string, args: string[]): Promise<T & { sampledPeak: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(child.pid!))), 20);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      clearInterval(sampler);
      if (code !== 0) return reject(new Error(`${script} exited ${code}: ${err}`));
      resolve({ ...(JSON.parse(out.trim().split('\n').pop()!) as T), sampledPeak: peak });
    });
  });
}

function uploadInOwnProcess(dir: string, url: string, key: string, secret: string): Promise<{ seconds: number; peakKiB: number; sampledPeak: number }> {
  return runChild('upload-once.js', [dir, url, key, secret]);
}

/** A victim holding mib MiB (bench/victim.c), detached so that the dumper is not its parent. */
async function startVictim(mib: number, work: string): Promise<number> {
  const ready = path.join(work, `victim-${mib}.ready`);
  execFileSync('/bin/sh', ['-c', `setsid "$0" "$@" </dev/null >/dev/null 2>&1 &`, path.join(__dirname, '..', '..', 'bench', 'bin', 'victim'), String(mib), ready]);
  const deadline = Date.now() + 120_000;
  while (!existsSync(ready)) {
    if (Date.now() > deadline) throw new Error(`the victim of ${mib} MiB did not get ready`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Number(readFileSync(ready, 'utf8').trim());
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** Restore of a real process from the store against a restore from a local directory, best of `repeat` each, alternating. */
async function restoreComparison(work: string, mib: number, repeat: number, bucket: string, secret: string): Promise<void> {
  const local = path.join(work, 'local-checkpoint');
  await fsp.mkdir(local, { mode: 0o700 });
  const pid = await startVictim(mib, work);
  try {
    await dumpProcess({ pid, dir: local });
  } finally {
    kill(pid);
  }
  const url = `s3://${bucket}/restore`;
  await uploadInOwnProcess(local, url, 'victim', secret); // seals it (signed) and publishes it
  let fromLocal = Infinity;
  let fromStore = Infinity;
  let download = Infinity;
  for (let i = 0; i < repeat; i++) {
    const l = await runChild<{ pid: number; seconds: number }>('restore-once.js', [local]);
    kill(l.pid);
    fromLocal = Math.min(fromLocal, l.seconds);
    const scratch = await fsp.mkdtemp(path.join(work, 'from-store-'));
    const s = await runChild<{ pid: number; seconds: number; downloadSeconds: number }>('store-restore-once.js', [url, 'victim', secret, scratch]);
    kill(s.pid);
    await fsp.rm(scratch, { recursive: true, force: true });
    fromStore = Math.min(fromStore, s.seconds);
    download = Math.min(download, s.downloadSeconds);
  }
  console.log(
    `restore of a ${mib} MiB process until it runs: from a local directory ${(fromLocal * 1000).toFixed(0)} ms, ` +
      `from the store ${(fromStore * 1000).toFixed(0)} ms (download + seal check ${(download * 1000).toFixed(0)} ms): ${(fromStore / fromLocal).toFixed(2)}x (target <= 1.5x)`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
