/**
 * Encryption at rest: AES-256-GCM in chunks, streamed, one file at a time.
 *
 *   header  "CPODENC1" | version (1) | log2(chunk bytes) | salt (32) | key check (16) | id length | key id
 *   chunks  AES-256-GCM(ciphertext || 16-byte tag) of each chunk of plain bytes, in order
 *
 * Each file gets its own key, HKDF(master key, random salt), so the chunk counter can be the nonce
 * without a nonce ever repeating under one key. Every chunk's additional data binds the header, the
 * file's name in the checkpoint, the chunk's index and whether it is the last, so reordered, swapped,
 * dropped or cut-off chunks fail authentication; the last chunk is always shorter than a full one (it
 * may be empty), so a file cut at a chunk boundary fails too. The key check (an HMAC of the salt under the
 * master key) tells a wrong key ("this file was written with key id X; the key given under that id is
 * another") apart from altered bytes, before any chunk is tried.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { StoreError } from './errors';

const MAGIC = Buffer.from('CPODENC1');
const VERSION = 1;
const SALT_BYTES = 32;
const CHECK_BYTES = 16;
export const TAG_BYTES = 16;
export const CIPHER_CHUNK_LOG2 = 20; // 1 MiB: bounded memory, and the tag costs 0.0015 %
const MAX_KEY_ID = 64;
const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;

export interface KeyRing {
  /** The key new uploads are encrypted with; none: uploads are stored in plain. */
  current?: string;
  /** Every key a download may meet, by id: 32 bytes each. */
  keys: Map<string, Buffer>;
}

/**
 * A key ring from a Secret's (or a file's) contents: `{ current: 'k2', keys: { k1: base64, k2: base64 } }`.
 * Keys are 32 random bytes, base64 (e.g. `head -c 32 /dev/urandom | base64`).
 */
export function keyRingFrom(spec: { current?: string; keys: Record<string, string> }): KeyRing {
  const keys = new Map<string, Buffer>();
  for (const [id, b64] of Object.entries(spec.keys)) {
    if (!KEY_ID.test(id)) throw new StoreError('BadLocation', `encryption key id ${JSON.stringify(id)} is not 1..64 of [A-Za-z0-9_.-]`);
    const key = Buffer.from(b64.trim(), 'base64');
    if (key.length !== 32) throw new StoreError('BadLocation', `encryption key ${id} is ${key.length} bytes, not 32 (base64 of 32 random bytes)`);
    keys.set(id, key);
  }
  if (spec.current !== undefined && !keys.has(spec.current)) throw new StoreError('BadLocation', `the current encryption key id ${spec.current} is not among the keys given`);
  return { current: spec.current, keys };
}

function fileKey(master: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', master, salt, 'cryopod image file v1', 32));
}

function keyCheck(master: Buffer, salt: Buffer): Buffer {
  return createHmac('sha256', master).update('cryopod key check v1').update(salt).digest().subarray(0, CHECK_BYTES);
}

/** The nonce of chunk `index` (exported for decrypt-pool.ts, which runs this very function's source in its workers). */
export function nonce(index: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(BigInt(index), 4);
  return n;
}

/** The additional data of chunk `index` (exported for decrypt-pool.ts, like nonce). */
export function aad(header: Buffer, name: string, index: number, last: boolean): Buffer {
  const tail = Buffer.alloc(9);
  tail.writeBigUInt64BE(BigInt(index), 0);
  tail[8] = last ? 1 : 0;
  return Buffer.concat([header, Buffer.from(name, 'utf8'), Buffer.from([0]), tail]);
}

/** Collects a byte stream into pieces of exactly `size` bytes (the last one shorter), without copying more than needed. */
async function* rechunk(source: AsyncIterable<Buffer | Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const piece of source) {
    let buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (held + buf.length >= size) {
      const take = size - held;
      parts.push(buf.subarray(0, take));
      yield parts.length === 1 ? parts[0] : Buffer.concat(parts, size);
      parts = [];
      held = 0;
      buf = buf.subarray(take);
    }
    if (buf.length) {
      parts.push(buf);
      held += buf.length;
    }
  }
  yield Buffer.concat(parts, held);
}

/** A new file's encryption: its header (a fresh salt, the key check, the key id) and its own key. */
export function newFileCipher(keyId: string, master: Buffer): OpenedHeader {
  const salt = randomBytes(SALT_BYTES);
  const id = Buffer.from(keyId, 'utf8');
  const header = Buffer.concat([MAGIC, Buffer.from([VERSION, CIPHER_CHUNK_LOG2]), salt, keyCheck(master, salt), Buffer.from([id.length]), id]);
  return { header, key: fileKey(master, salt), chunkBytes: 1 << CIPHER_CHUNK_LOG2 };
}

/** Seals chunk `index` of a file (the last one when `last`): ciphertext and tag. */
export function sealChunk(o: OpenedHeader, name: string, index: number, last: boolean, plain: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', o.key, nonce(index));
  c.setAAD(aad(o.header, name, index, last));
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

/** The chunks of a file of plainBytes (the last always short, maybe empty) and its stored size. */
export function sealedLayout(plainBytes: number, o: OpenedHeader): { chunks: number; storedBytes: number } {
  const chunks = Math.floor(plainBytes / o.chunkBytes) + 1;
  return { chunks, storedBytes: o.header.length + plainBytes + chunks * TAG_BYTES };
}

/** A stream transform (for stream.pipeline) that encrypts one file of the checkpoint, named `name`. */
export function encryptor(keyId: string, master: Buffer, name: string): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return async function* encrypt(source) {
    const o = newFileCipher(keyId, master);
    yield o.header;
    let index = 0;
    let pending: Buffer | undefined;
    // One chunk of look-ahead: a chunk is the last only if nothing follows it. A full chunk at the very
    // end is followed by an empty last one, so the last chunk is always short.
    for await (const chunk of rechunk(source, o.chunkBytes)) {
      if (pending !== undefined) yield sealChunk(o, name, index++, false, pending);
      pending = chunk;
    }
    if (pending!.length === o.chunkBytes) {
      yield sealChunk(o, name, index++, false, pending!);
      pending = Buffer.alloc(0);
    }
    yield sealChunk(o, name, index, true, pending!);
  };
}

/** Reads the header off the front of an encrypted file; undefined until enough bytes are there. */
function parseHeader(buf: Buffer, name: string): { header: Buffer; salt: Buffer; check: Buffer; keyId: string; chunkBytes: number } | undefined {
  const fixed = MAGIC.length + 2 + SALT_BYTES + CHECK_BYTES + 1;
  if (buf.length < MAGIC.length) return undefined;
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new StoreError('Decrypt', `${name} is not encrypted by Cryopod (no CPODENC1 header): the store holds plain or foreign bytes`);
  if (buf.length < fixed) return undefined;
  if (buf[MAGIC.length] !== VERSION) throw new StoreError('Decrypt', `${name}: encryption format version ${buf[MAGIC.length]} is not supported`);
  const log2 = buf[MAGIC.length + 1];
  if (log2 < 12 || log2 > 26) throw new StoreError('Decrypt', `${name}: chunk size 2^${log2} is out of range`);
  const idLen = buf[fixed - 1];
  if (idLen === 0 || idLen > MAX_KEY_ID) throw new StoreError('Decrypt', `${name}: key id length ${idLen} is out of range`);
  if (buf.length < fixed + idLen) return undefined;
  const salt = buf.subarray(MAGIC.length + 2, MAGIC.length + 2 + SALT_BYTES);
  return { header: buf.subarray(0, fixed + idLen), salt, check: buf.subarray(MAGIC.length + 2 + SALT_BYTES, fixed - 1), keyId: buf.subarray(fixed, fixed + idLen).toString('utf8'), chunkBytes: 2 ** log2 };
}

/** The key id an encrypted file names in its header (undefined for a file too short to say). */
export function keyIdOf(start: Buffer, name: string): string | undefined {
  return parseHeader(start, name)?.keyId;
}

/** A file's key and header, once its header is read and its key id found and checked (wrong key, missing key: Decrypt). */
export interface OpenedHeader {
  header: Buffer;
  key: Buffer;
  chunkBytes: number;
}

/** Opens an encrypted file's header (the first bytes of the file, at least its header); undefined while too few bytes are there. */
export function openHeader(ring: KeyRing | undefined, name: string, start: Buffer): OpenedHeader | undefined {
  const h = parseHeader(start, name);
  if (h === undefined) return undefined;
  const master = ring?.keys.get(h.keyId);
  if (master === undefined) throw new StoreError('Decrypt', `${name} is encrypted with key id ${h.keyId}, and no key with that id was given`);
  if (!timingSafeEqual(keyCheck(master, h.salt), h.check)) throw new StoreError('Decrypt', `${name} is encrypted with key id ${h.keyId}, and the key given under that id is a different key (wrong key)`);
  return { header: Buffer.from(h.header), key: fileKey(master, h.salt), chunkBytes: h.chunkBytes };
}

/** The longest header there is: enough bytes to read to open any header. */
export const MAX_HEADER_BYTES = MAGIC.length + 2 + SALT_BYTES + CHECK_BYTES + 1 + MAX_KEY_ID;

export interface ChunkLayout {
  /** Sealed chunks in the file, the last one included. */
  chunks: number;
  plainBytes: number;
}

/**
 * Where the chunks of an encrypted file of `storedBytes` are, from its size alone: every chunk but the
 * last is chunkBytes + tag, the last is shorter. A size that no whole file has is a file cut short.
 */
export function chunkLayout(name: string, storedBytes: number, opened: OpenedHeader): ChunkLayout {
  const body = storedBytes - opened.header.length;
  const full = opened.chunkBytes + TAG_BYTES;
  const whole = Math.floor(body / full);
  const rest = body - whole * full;
  if (body < TAG_BYTES || rest < TAG_BYTES) throw new StoreError('Decrypt', `${name} ends without its last chunk: the stored file was cut short`);
  return { chunks: whole + 1, plainBytes: whole * opened.chunkBytes + rest - TAG_BYTES };
}

/** Decrypts sealed chunk `index` of a file (the last one when `last`), or fails with reason Decrypt. */
export function openChunk(opened: OpenedHeader, name: string, index: number, last: boolean, sealed: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', opened.key, nonce(index));
  d.setAAD(aad(opened.header, name, index, last));
  d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG_BYTES)), d.final()]);
  } catch (err) {
    throw new StoreError('Decrypt', `${name}: chunk ${index} fails authentication: the stored bytes were altered, reordered or cut short`, { cause: err });
  }
}

/** A stream transform that decrypts one file and fails with reason Decrypt on any wrong or missing byte. */
export function decryptor(ring: KeyRing | undefined, name: string): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return async function* decrypt(source) {
    // The header first (it may arrive in pieces), then the rest cut into sealed chunks.
    const it = source[Symbol.asyncIterator]();
    let head = Buffer.alloc(0);
    let opened: OpenedHeader | undefined;
    while ((opened = openHeader(ring, name, head)) === undefined) {
      const r = await it.next();
      if (r.done) throw new StoreError('Decrypt', `${name} is cut short inside its encryption header`);
      head = Buffer.concat([head, r.value]);
    }
    const o = opened;
    const rest = head.subarray(o.header.length);
    async function* remaining(): AsyncGenerator<Buffer> {
      if (rest.length) yield rest;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    }
    // One sealed chunk of look-ahead: only the end of the stream says which chunk is the last.
    let index = 0;
    let pending: Buffer | undefined;
    for await (const sealed of rechunk(remaining(), o.chunkBytes + TAG_BYTES)) {
      if (pending !== undefined) yield openChunk(o, name, index++, false, pending);
      pending = sealed;
    }
    if (pending === undefined || pending.length < TAG_BYTES || pending.length >= o.chunkBytes + TAG_BYTES) {
      throw new StoreError('Decrypt', `${name} ends without its last chunk: the stored file was cut short`);
    }
    yield openChunk(o, name, index, true, pending);
  };
}
