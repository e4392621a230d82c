import { DeleteObjectCommand, GetObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { verifySeal } from '../images/seal-verify';
import { openStore } from './open-store';
import { storeContract } from './test/contract';
import { keyPair, makeCheckpoint, readTree, tempDir } from './test/fixture';
import { startMinio, type Minio } from './test/minio';

const BUCKET = 'cryopod-test';
const PREFIX = 'images';
let minio: Minio;
let raw: S3Client;

beforeAll(async () => {
  minio = await startMinio();
  await minio.createBucket(BUCKET);
  raw = new S3Client({ endpoint: minio.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: minio.s3.accessKeyId!, secretAccessKey: minio.s3.secretAccessKey! } });
}, 600_000);
afterAll(async () => {
  raw?.destroy();
  await minio?.stop();
});

const objectKey = (key: string, file: string): string => `${PREFIX}/${key}/${file}`;

describe('S3 store against MinIO: the store contract', () => {
  storeContract(() => ({
    open: (opts) => openStore(`s3://${BUCKET}/${PREFIX}`, { ...opts, s3: { ...minio.s3, partBytes: 5 << 20 } }),
    raw: {
      read: async (key, file) => Buffer.from(await (await raw.send(new GetObjectCommand({ Bucket: BUCKET, Key: objectKey(key, file) }))).Body!.transformToByteArray()),
      write: async (key, file, data) => {
        await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key: objectKey(key, file), Body: data }));
      },
      remove: async (key, file) => {
        await raw.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: objectKey(key, file) }));
      },
      leavePartial: async (key) => {
        await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key: objectKey(key, '.cryopod-upload'), Body: '' }));
        await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key: objectKey(key, 'app/pages-1.img'), Body: 'half' }));
      },
    },
  }));
});

describe('S3 store against MinIO: failures', () => {
  test('the server killed mid-upload and started again: the upload completes after retries, nothing lost', async () => {
    const scratch = await tempDir();
    const signer = keyPair();
    const src = path.join(scratch, 'src');
    await makeCheckpoint(src, { key: signer.privateKey, pagesBytes: 48 << 20 });
    const store = openStore(`s3://${BUCKET}/${PREFIX}`, { s3: { ...minio.s3, partBytes: 5 << 20, parallelParts: 2 }, retryForMs: 120_000 });
    const key = `team-a/killed-${Date.now()}`;
    let killed: Promise<void> | undefined;
    const up = store.upload(key, src, {
      onProgress: (p) => {
        // Kill it once, a third of the way through the large file; start it again a moment later.
        if (!killed && p.file === 'app/pages-1.img' && p.doneBytes > 16 << 20) {
          killed = minio.kill().then(() => minio.start());
        }
      },
    });
    await up;
    expect(killed).toBeDefined();
    await killed;
    const dst = path.join(scratch, 'dst');
    await store.download(key, dst);
    await verifySeal(dst, { trusted: [signer.publicKey] });
    expect(await readTree(dst)).toEqual(await readTree(src));
    // The multipart upload the crash interrupted is cleaned by remove(), with the objects.
    await store.remove(key);
    const left = await raw.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: objectKey(key, '') }));
    expect(left.Uploads ?? []).toEqual([]);
    await fsp.rm(scratch, { recursive: true, force: true });
  });

  test('a retried upload skips the files an earlier try stored whole', async () => {
    const scratch = await tempDir();
    const src = path.join(scratch, 'src');
    await makeCheckpoint(src, { key: keyPair().privateKey });
    const store = openStore(`s3://${BUCKET}/${PREFIX}`, { s3: minio.s3 });
    const key = `team-a/resume-${Date.now()}`;
    const ac = new AbortController();
    await expect(store.upload(key, src, { signal: ac.signal, onProgress: (p) => p.file === 'app/pages-1.img' && ac.abort() })).rejects.toThrow();
    const before = await raw.send(new GetObjectCommand({ Bucket: BUCKET, Key: objectKey(key, 'app/core-1.img') }));
    const stamp = before.LastModified!;
    before.Body!.transformToByteArray();
    await store.upload(key, src);
    const after = await raw.send(new GetObjectCommand({ Bucket: BUCKET, Key: objectKey(key, 'app/core-1.img') }));
    await after.Body!.transformToByteArray();
    expect(after.ETag).toBe(before.ETag);
    expect(after.LastModified!.getTime()).toBe(stamp.getTime());
    await fsp.rm(scratch, { recursive: true, force: true });
  });

  test('wrong credentials fail at once with the reason, without retrying for minutes', async () => {
    const scratch = await tempDir();
    const src = path.join(scratch, 'src');
    await makeCheckpoint(src, { key: keyPair().privateKey });
    const store = openStore(`s3://${BUCKET}/${PREFIX}`, { s3: { ...minio.s3, secretAccessKey: 'wrong-secret-key-0000' } });
    const t0 = Date.now();
    await expect(store.upload(`team-a/creds-${Date.now()}`, src)).rejects.toMatchObject({ reason: 'Denied', message: expect.stringMatching(/access denied \(HTTP 403/) });
    expect(Date.now() - t0).toBeLessThan(20_000);
    await fsp.rm(scratch, { recursive: true, force: true });
  });
});
