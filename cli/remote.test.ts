/**
 * `cryopod dump --to s3://…` and `cryopod restore --from s3://…` on real processes against a real MinIO:
 * the restored victim passes its own memory check; a tampered byte in the bucket, or an unsigned
 * checkpoint, is refused before any stub is morphed (no cryopod-stub process appears, nothing runs).
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkResult, cleanup, expectKilledByDump, processesRunning, startVictim, trackPid } from '../native/test/harness';
import { startMinio, type Minio } from '../store/test/minio';
import { main } from './main';

jest.setTimeout(300_000);

const BUCKET = 'cli-test';
let minio: Minio;
let raw: S3Client;
let keys: string;
const saved = { ...process.env };

function sink(): NodeJS.WriteStream & { text: string } {
  const s = { text: '', write: (chunk: string) => ((s.text += chunk), true) };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

beforeAll(async () => {
  minio = await startMinio();
  await minio.createBucket(BUCKET);
  raw = new S3Client({ endpoint: minio.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: minio.s3.accessKeyId!, secretAccessKey: minio.s3.secretAccessKey! } });
  keys = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-cli-keys-')); // not makeTempDir: cleanup() removes those after each test
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  fs.writeFileSync(path.join(keys, 'seal.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  fs.writeFileSync(path.join(keys, 'seal.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: minio.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: minio.s3.secretAccessKey,
    CRYOPOD_S3_ENDPOINT: minio.endpoint,
    CRYOPOD_SIGNING_KEY: path.join(keys, 'seal.key'),
    CRYOPOD_TRUSTED_KEYS: path.join(keys, 'seal.pub'),
  });
}, 900_000);
afterAll(async () => {
  process.env = saved;
  fs.rmSync(keys, { recursive: true, force: true });
  raw?.destroy();
  await minio?.stop();
});
afterEach(cleanup);

async function dumpTo(url: string): Promise<string> {
  const v = await startVictim('memory');
  const out = sink();
  const err = sink();
  const rc = await main(['dump', '--pid', String(v.pid), '--to', url], out, err);
  expect(`exit ${rc}: ${err.text}`).toMatch(/^exit 0: /);
  expect(out.text).toContain(`to ${url}:`);
  await expectKilledByDump(v);
  return v.workdir;
}

test('dump --to s3:// then restore --from s3://: the restored process passes its memory check', async () => {
  const url = `s3://${BUCKET}/laptop/mem-ok`;
  const workdir = await dumpTo(url);
  const out = sink();
  const err = sink();
  expect(await main(['restore', '--from', url], out, err)).toBe(0);
  const pid = Number(out.text.trim());
  trackPid(pid);
  expect(await checkResult(pid, workdir)).toBe('PASS');
});

test('a tampered byte in the bucket: restore --from refuses it, names the file, and no stub is morphed', async () => {
  const url = `s3://${BUCKET}/laptop/mem-bad`;
  await dumpTo(url);
  const Key = 'laptop/mem-bad/pages-1.img';
  const body = Buffer.from(await (await raw.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body!.transformToByteArray());
  body[body.length - 100] ^= 0x5a;
  await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: body }));
  const stubs = processesRunning('cryopod-stub').length;
  const err = sink();
  expect(await main(['restore', '--from', url], sink(), err)).toBe(1);
  expect(err.text).toMatch(/pages-1\.img: blake3 is [0-9a-f]{64}, the seal says [0-9a-f]{64} \(the file was altered\)/);
  expect(processesRunning('cryopod-stub').length).toBe(stubs);
});

test('an unsigned checkpoint is refused unless --insecure-unsigned is given, and its saved root credentials unless --trust-saved-credentials is too', async () => {
  const url = `s3://${BUCKET}/laptop/mem-unsigned`;
  delete process.env.CRYOPOD_SIGNING_KEY;
  let workdir: string;
  try {
    workdir = await dumpTo(url);
  } finally {
    process.env.CRYOPOD_SIGNING_KEY = path.join(keys, 'seal.key');
  }
  const err = sink();
  expect(await main(['restore', '--from', url], sink(), err)).toBe(1);
  expect(err.text).toMatch(/not signed; refusing it/);
  // Unsigned, nobody vouches for its writer: the uid 0 it claims (the victim ran as root) is not given.
  const denied = sink();
  expect(await main(['restore', '--from', url, '--insecure-unsigned'], sink(), denied)).toBe(1);
  expect(denied.text).toContain('an unsigned checkpoint has no known writer, and the checkpoint claims uid 0 gid 0: refused (pass --trust-saved-credentials to restore with them anyway)');
  const out = sink();
  expect(await main(['restore', '--from', url, '--insecure-unsigned', '--trust-saved-credentials'], out, sink())).toBe(0);
  const pid = Number(out.text.trim());
  trackPid(pid);
  expect(await checkResult(pid, workdir)).toBe('PASS');
});
