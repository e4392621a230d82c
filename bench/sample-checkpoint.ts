/**
 * A checkpoint tree as the agent leaves it before upload, for the S3 bench and the store tests
 * (store/test/fixture.ts): pod.json, one container
 * directory with a manifest (images/manifest.ts) and images of made-up but deterministic bytes, sealed.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chunkBytesFor, hashFile, MANIFEST_FORMAT, MANIFEST_VERSION, writeManifest } from '../images/manifest';
import { sealCheckpoint } from '../images/seal';

export function bytes(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed * 2654435761 || 1;
  for (let i = 0; i < length; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    b.writeUInt32LE(x, Math.min(i, length - 4));
  }
  return b;
}

export function keyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

export async function tempDir(prefix = 'cryopod-store-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Writes a checkpoint tree into dir and seals it; pagesBytes sizes the one large image. */
export async function makeCheckpoint(dir: string, opts: { pagesBytes?: number; key?: KeyObject; encryptionKeyId?: string } = {}): Promise<void> {
  await fsp.mkdir(path.join(dir, 'app'), { recursive: true, mode: 0o700 });
  await fsp.writeFile(path.join(dir, 'pod.json'), JSON.stringify({ kind: 'Pod', metadata: { name: 'web', namespace: 'team-a' }, spec: { containers: [{ name: 'app', env: [{ name: 'TOKEN', value: 'secret-token-123' }] }] } }));
  const images: Array<[string, Buffer]> = [
    ['core-1.img', bytes(3000, 1)],
    ['mm-1.img', bytes(700, 2)],
    ['pages-1.img', bytes(opts.pagesBytes ?? (3 << 20) + 123, 3)],
  ];
  const files = [];
  for (const [name, data] of images) {
    const file = path.join(dir, 'app', name);
    await fsp.writeFile(file, data, { mode: 0o600 });
    const chunkBytes = chunkBytesFor(data.length);
    files.push({ name, size: data.length, sha256: await hashFile(file, chunkBytes), ...(chunkBytes ? { chunkBytes } : {}) });
  }
  await writeManifest(path.join(dir, 'app'), { format: MANIFEST_FORMAT, formatVersion: MANIFEST_VERSION, pid: 1, comm: 'web', createdAt: new Date().toISOString(), frozenSeconds: 0.01, files });
  await sealCheckpoint(dir, { key: opts.key, encryptionKeyId: opts.encryptionKeyId });
}

/** Every file of a tree with its size and sha256, for comparing an upload with its download (jest compares big Buffers slowly). */
export async function readTree(dir: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) Object.assign(out, await readTree(dir, p));
    else {
      const data = await fsp.readFile(path.join(dir, p));
      out[p] = `${data.length} ${createHash('sha256').update(data).digest('hex')}`;
    }
  }
  return out;
}
