/**
 * Store throughput against a real MinIO on loopback: `node dist/bench/s3.js [--mib 1024] [--repeat 2]`
 *
 * A sealed checkpoint of MIB MiB (one large pages image, as a real dump has) is uploaded and downloaded
 * through the image store (store/), and the same bytes are put and got with the plain SDK (lib-storage
 * Upload with the same part size and parallelism; GetObject streamed to a file) in the same run, as a
 * ratio (the target is >= 0.9), with encryption off and on. Each rate is the best of --repeat runs (the
 * machine is shared). The bench process's peak RSS during the store's uploads is reported too
 * (target < 128 MiB). MinIO keeps its data in /dev/shm when there is room, so the disk does not decide.
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { keyRingFrom } from '../store/cipher';
import { openStore } from '../store/open-store';
import { startMinio } from './minio-server';
import { keyPair, makeCheckpoint } from './sample-checkpoint';

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
  } finally {
    clearInterval(sampler);
    sdk.destroy();
    await minio.stop();
    await fsp.rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
