/**
 * The seal, cryopod-seal.json: the signed manifest of a whole checkpoint tree. It lists every file a
 * restore reads (pod.json, each container's cryopod-manifest.json and images) by path, size and sha256,
 * with the manifest format version, the dumping host's kernel and CPU flags, and the encryption key id,
 * and is signed with Ed25519 by the checkpointing side.
 *
 * Why Ed25519 and not an HMAC: the verifiers (the operator building a restore pod from pod.json, a CLI
 * on a laptop, agents on other nodes) then hold only a public key, which cannot sign. With an HMAC every
 * verifier could also forge a checkpoint, so one leaked operator or laptop key would let anyone who can
 * write the bucket make a node restore arbitrary code as root. node:crypto signs Ed25519 natively.
 *
 * Image files a container manifest lists keep the sha256 (and chunking) the manifest gives them, so
 * sealing does not hash a gigabyte twice; verification checks that each manifest agrees with the seal,
 * so a restore that checks images against its manifest (verifyManifest, the native fill) checks them
 * against the signed hashes.
 */
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ImageError } from './errors';
import { hostFacts, type HostFacts } from './host';
import { MAX_MANIFEST_BYTES } from './limits';
import { MANIFEST_FILE } from './magic';
import { hashFile, MANIFEST_VERSION, parseManifest, type FileDigest, type ManifestFile } from './manifest';

export const SEAL_FILE = 'cryopod-seal.json';
const SEAL_FORMAT = 'cryopod-seal';
const SEAL_VERSION = 1;

export interface SealedFile extends FileDigest {
  /** Relative to the checkpoint directory, '/'-separated. */
  path: string;
  size: number;
}

export interface Seal {
  format: typeof SEAL_FORMAT;
  version: number;
  /** The version of the container manifests inside (images/manifest.ts MANIFEST_VERSION). */
  manifestVersion: number;
  createdAt: string;
  host: HostFacts;
  /** Set when the store holds the files encrypted (store/cipher.ts): which key. */
  encryption?: { alg: 'aes-256-gcm-chunked-v1'; keyId: string };
  files: SealedFile[];
  signature?: { alg: 'ed25519'; keyId: string; value: string };
}

/** A signing key (the agent's, the CLI's): an Ed25519 private key, PEM (openssl genpkey -algorithm ed25519). */
export function signingKey(pem: string | Buffer): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the signing key is ${key.asymmetricKeyType}, not ed25519`);
  return key;
}

/** A verifying key: an Ed25519 public key, PEM (or the private key, whose public half is used). */
export function verifyingKey(pem: string | Buffer): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the verifying key is ${key.asymmetricKeyType}, not ed25519`);
  return key;
}

/** A key's id: the first 16 hex digits of the sha256 of its public key (SPKI DER), the same for both halves. */
export function keyIdOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/** JSON with keys sorted at every level: the exact bytes that are signed. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function signedBytes(seal: Seal): Buffer {
  const { signature: _ignored, ...body } = seal;
  return Buffer.from(canonicalJson(body), 'utf8');
}

/** Every regular file below dir (relative '/' paths, sorted), refusing anything else: a symlink could lead out. */
export async function listTree(dir: string, rel = ''): Promise<Array<{ path: string; size: number }>> {
  const out: Array<{ path: string; size: number }> = [];
  for (const e of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listTree(dir, p)));
    else if (e.isFile()) out.push({ path: p, size: (await fsp.lstat(path.join(dir, p))).size });
    else throw new ImageError('EDECODE', p, 'is neither a regular file nor a directory: a checkpoint holds only those');
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

async function readSmall(file: string, name: string): Promise<string> {
  const st = await fsp.lstat(file).catch((err: NodeJS.ErrnoException) => {
    throw new ImageError(err.code === 'ENOENT' ? 'EMISSING' : 'EDECODE', name, err.code === 'ENOENT' ? 'is missing' : err.message, { cause: err });
  });
  if (!st.isFile()) throw new ImageError('EDECODE', name, 'is not a regular file');
  if (st.size > MAX_MANIFEST_BYTES) throw new ImageError('ETOOBIG', name, `${st.size} bytes is over the cap of ${MAX_MANIFEST_BYTES}`);
  return fsp.readFile(file, 'utf8');
}

/** The container manifests' entries, by the path they stand for: what sealing reuses and verifying compares. */
async function manifestEntries(dir: string, files: Array<{ path: string }>): Promise<Map<string, ManifestFile>> {
  const byPath = new Map<string, ManifestFile>();
  for (const f of files) {
    if (path.posix.basename(f.path) !== MANIFEST_FILE) continue;
    const sub = path.posix.dirname(f.path);
    const manifest = parseManifest(await readSmall(path.join(dir, f.path), f.path));
    for (const entry of manifest.files) byPath.set(sub === '.' ? entry.name : `${sub}/${entry.name}`, entry);
  }
  return byPath;
}

/**
 * Seals a finished checkpoint tree: writes SEAL_FILE (0600) listing every other file, signed with `key`
 * (unsigned when none is given: a restore then refuses it unless told otherwise).
 */
export async function sealCheckpoint(dir: string, opts: { key?: KeyObject; encryptionKeyId?: string; host?: HostFacts } = {}): Promise<Seal> {
  const tree = (await listTree(dir)).filter((f) => f.path !== SEAL_FILE);
  const listed = await manifestEntries(dir, tree);
  const files: SealedFile[] = [];
  for (const f of tree) {
    const m = listed.get(f.path);
    if (m !== undefined && m.size === f.size) {
      const digest = m.blake3 !== undefined ? { blake3: m.blake3 } : { sha256: m.sha256 };
      files.push({ path: f.path, size: f.size, ...digest, ...(m.chunkBytes ? { chunkBytes: m.chunkBytes } : {}) });
    }
    else files.push({ path: f.path, size: f.size, sha256: await hashFile(path.join(dir, f.path)) });
  }
  const seal: Seal = {
    format: SEAL_FORMAT,
    version: SEAL_VERSION,
    manifestVersion: MANIFEST_VERSION,
    createdAt: new Date().toISOString(),
    host: opts.host ?? hostFacts(),
    ...(opts.encryptionKeyId ? { encryption: { alg: 'aes-256-gcm-chunked-v1' as const, keyId: opts.encryptionKeyId } } : {}),
    files,
  };
  if (opts.key) seal.signature = { alg: 'ed25519', keyId: keyIdOf(opts.key), value: sign(null, signedBytes(seal), opts.key).toString('base64') };
  const tmp = path.join(dir, `.${SEAL_FILE}.tmp`);
  await fsp.writeFile(tmp, JSON.stringify(seal, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  await fsp.rename(tmp, path.join(dir, SEAL_FILE));
  return seal;
}
