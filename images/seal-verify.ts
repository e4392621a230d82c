/**
 * Verifying a seal (seal.ts): the one check a restore makes before it reads anything else of a
 * checkpoint. Small API for the checkpoint library, the agent, the operator and the CLI:
 *
 *   const seal = await verifySeal(dir, { trusted: [publicKey] });            // throws SealError
 *   const seal = await verifySeal(dir, { allowUnsigned: true });             // the explicit opt-out
 *   parseSealText(text) / checkSignature(seal, opts)                          // pod.json before download
 */
import { verify, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { MAX_MANIFEST_BYTES } from './limits';
import { digestOf, hashFileAs, sameDigest } from './manifest';
import { canonicalJson, keyIdOf, listTree, SEAL_FILE, type Seal, type SealedFile } from './seal';
import { MANIFEST_FILE } from './magic';
import { parseManifest } from './manifest';

export type SealProblem = 'Unsigned' | 'BadSignature' | 'UnknownKey' | 'Malformed' | 'Missing' | 'Extra' | 'Size' | 'Hash';

/** Why a checkpoint is refused: `problem` for code, `file` (when one is to blame) and a message for people. */
export class SealError extends Error {
  override name = 'SealError';
  constructor(
    readonly problem: SealProblem,
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
  }
}

export interface VerifyOptions {
  /** Public keys whose signatures are accepted. */
  trusted?: KeyObject[];
  /** Accept a checkpoint with no signature (an explicit user choice: --insecure-unsigned). A bad signature is still refused. */
  allowUnsigned?: boolean;
  /**
   * Paths whose sha256 the caller verifies itself as it uses the bytes (the pages images: the native fill
   * hashes them chunk by chunk). Their size is still checked, and their manifest must agree with the seal.
   */
  deferHash?: (file: string) => boolean;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const REL_PATH = /^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/;

function malformed(message: string): SealError {
  return new SealError('Malformed', SEAL_FILE, message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and shape-checks a seal's text (nothing about its signature yet). */
export function parseSealText(text: string): Seal {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new SealError('Malformed', SEAL_FILE, `not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isRecord(v) || v.format !== 'cryopod-seal') throw malformed('not a Cryopod seal');
  if (v.version !== 1) throw malformed(`seal version ${JSON.stringify(v.version)} is not supported (this Cryopod reads 1)`);
  if (!Number.isSafeInteger(v.manifestVersion)) throw malformed('manifestVersion is not an integer');
  if (typeof v.createdAt !== 'string') throw malformed('createdAt is not a string');
  const h = v.host;
  if (!isRecord(h) || typeof h.kernel !== 'string' || typeof h.machine !== 'string' || !Array.isArray(h.cpuFlags) || !h.cpuFlags.every((f) => typeof f === 'string')) {
    throw malformed('host is not {kernel, machine, cpuFlags}');
  }
  if (v.encryption !== undefined && (!isRecord(v.encryption) || v.encryption.alg !== 'aes-256-gcm-chunked-v1' || typeof v.encryption.keyId !== 'string')) {
    throw malformed('encryption is not {alg: aes-256-gcm-chunked-v1, keyId}');
  }
  if (v.signature !== undefined && (!isRecord(v.signature) || v.signature.alg !== 'ed25519' || typeof v.signature.keyId !== 'string' || typeof v.signature.value !== 'string')) {
    throw malformed('signature is not {alg: ed25519, keyId, value}');
  }
  if (!Array.isArray(v.files)) throw malformed('files is not an array');
  const seen = new Set<string>();
  for (const [i, f] of v.files.entries()) {
    if (!isRecord(f) || typeof f.path !== 'string' || !REL_PATH.test(f.path) || f.path === SEAL_FILE) throw malformed(`files[${i}] has no plain relative path`);
    if (seen.has(f.path)) throw malformed(`${f.path} is listed twice`);
    seen.add(f.path);
    if (!Number.isSafeInteger(f.size) || (f.size as number) < 0) throw malformed(`${f.path} has no valid size`);
    // A sha256, or (pages images of a v3 manifest) a chunked blake3: exactly one.
    if (f.blake3 !== undefined) {
      if (f.sha256 !== undefined || typeof f.blake3 !== 'string' || !SHA256_HEX.test(f.blake3) || f.chunkBytes === undefined) throw malformed(`${f.path} has no valid blake3`);
    } else if (typeof f.sha256 !== 'string' || !SHA256_HEX.test(f.sha256)) throw malformed(`${f.path} has no valid sha256`);
    if (f.chunkBytes !== undefined && (!Number.isSafeInteger(f.chunkBytes) || (f.chunkBytes as number) < 4096)) throw malformed(`${f.path} has an invalid chunkBytes`);
  }
  return v as unknown as Seal;
}

/** Checks the signature alone: refuses an unsigned seal (unless allowed), an unknown key, a wrong signature. */
export function checkSignature(seal: Seal, opts: VerifyOptions): void {
  if (seal.signature === undefined) {
    if (opts.allowUnsigned) return;
    throw new SealError('Unsigned', SEAL_FILE, 'the checkpoint is not signed; refusing it (restore with the explicit opt-out --insecure-unsigned to accept it anyway)');
  }
  const key = (opts.trusted ?? []).find((k) => keyIdOf(k) === seal.signature!.keyId);
  if (key === undefined) {
    throw new SealError('UnknownKey', SEAL_FILE, `signed by key ${seal.signature.keyId}, which is not among the ${opts.trusted?.length ?? 0} trusted key(s)`);
  }
  const { signature, ...body } = seal;
  if (!verify(null, Buffer.from(canonicalJson(body), 'utf8'), key, Buffer.from(signature.value, 'base64'))) {
    throw new SealError('BadSignature', SEAL_FILE, `the signature does not match its contents (key ${signature.keyId}): the seal was rewritten`);
  }
}

export async function readSeal(dir: string): Promise<Seal> {
  const file = path.join(dir, SEAL_FILE);
  const st = await fsp.lstat(file).catch((err: NodeJS.ErrnoException) => {
    throw new SealError('Missing', SEAL_FILE, err.code === 'ENOENT' ? `missing in ${dir}: the checkpoint is not sealed or its upload never finished` : err.message, { cause: err });
  });
  if (!st.isFile()) throw malformed('is not a regular file');
  if (st.size > MAX_MANIFEST_BYTES) throw malformed(`${st.size} bytes is over the cap of ${MAX_MANIFEST_BYTES}`);
  return parseSealText(await fsp.readFile(file, 'utf8'));
}

/** Each container manifest must list exactly what the seal lists for its files, so checks against it are checks against the seal. */
async function checkManifestsAgree(dir: string, byPath: Map<string, SealedFile>): Promise<void> {
  for (const p of byPath.keys()) {
    if (path.posix.basename(p) !== MANIFEST_FILE) continue;
    const sub = path.posix.dirname(p);
    const manifest = parseManifest(await fsp.readFile(path.join(dir, p), 'utf8'));
    for (const m of manifest.files) {
      const full = sub === '.' ? m.name : `${sub}/${m.name}`;
      const s = byPath.get(full);
      if (s === undefined) throw new SealError('Missing', full, `listed in ${p} but not in the seal`);
      if (s.size !== m.size || !sameDigest(s, m)) throw new SealError('Hash', full, `${p} and the seal disagree about it`);
    }
  }
}

/**
 * Verifies a checkpoint directory against its seal: the signature, then that the files present are
 * exactly those listed, then every size and (but for deferHash) every sha256. Returns the seal.
 */
export async function verifySeal(dir: string, opts: VerifyOptions = {}): Promise<Seal> {
  const seal = await readSeal(dir);
  checkSignature(seal, opts);
  const byPath = new Map(seal.files.map((f) => [f.path, f]));
  const present = (await listTree(dir)).filter((f) => f.path !== SEAL_FILE);
  for (const f of present) if (!byPath.has(f.path)) throw new SealError('Extra', f.path, 'is in the checkpoint but not covered by the seal');
  const sizes = new Map(present.map((f) => [f.path, f.size]));
  for (const f of seal.files) {
    const size = sizes.get(f.path);
    if (size === undefined) throw new SealError('Missing', f.path, 'is listed in the seal but missing');
    if (size !== f.size) throw new SealError('Size', f.path, `is ${size} bytes, the seal says ${f.size} (truncated or altered)`);
  }
  // The manifests are hashed first (they are small), then compared with the seal.
  const order = [...seal.files].sort((a, b) => Number(path.posix.basename(b.path) === MANIFEST_FILE) - Number(path.posix.basename(a.path) === MANIFEST_FILE));
  let manifestsChecked = false;
  for (const f of order) {
    if (!manifestsChecked && path.posix.basename(f.path) !== MANIFEST_FILE) {
      await checkManifestsAgree(dir, byPath);
      manifestsChecked = true;
    }
    if (opts.deferHash?.(f.path)) continue;
    const actual = await hashFileAs(path.join(dir, f.path), f);
    const { algorithm, hex } = digestOf(f);
    if (actual !== hex) throw new SealError('Hash', f.path, `${algorithm} is ${actual}, the seal says ${hex} (the file was altered)`);
  }
  if (!manifestsChecked) await checkManifestsAgree(dir, byPath);
  return seal;
}
