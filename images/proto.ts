/**
 * The message types of Cryopod's own .proto files (images/proto/, CRIU-compatible, see proto/README.md),
 * and encoding and decoding wrapped so that every failure is an ImageError.
 *
 * A built tree has their codecs generated at build time (dist/images/codecs.js, codecs-gen.ts: the same
 * protobufjs-generated functions, on protobufjs/minimal), so a command neither loads the full protobufjs
 * nor parses the .proto files (~40 ms of every restore's critical path here). Without that file, or from
 * the sources (ts-jest) when the .proto files changed since it was made, they are loaded with
 * protobufjs' reflection at run time, as before.
 *
 * The .proto files stay in the source tree: this module runs from images/ under ts-jest and from
 * dist/images/ after tsc, so it looks for proto/ beside itself first, then under images/proto of the
 * repository root (the first directory upwards with a package.json).
 */

import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type * as Protobuf from 'protobufjs';
import * as protobufMinimal from 'protobufjs/minimal';
import { ImageError } from './errors';

// The full protobufjs (its parser and reflection, ~17 ms to load here) only when there are no generated codecs.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const reflection = (): typeof Protobuf => require('protobufjs') as typeof Protobuf;

const PROTO_FILES = [
  'inventory.proto',
  'pstree.proto',
  'core.proto',
  'mm.proto',
  'pagemap.proto',
  'sk-opts.proto',
  'sk-inet.proto',
  'pipe.proto',
  'pipe-data.proto',
  'ghost-file.proto',
  'eventfd.proto',
  'eventpoll.proto',
  'signalfd.proto',
  'timerfd.proto',
  'memfd.proto',
  'sk-unix.proto',
  'fifo.proto',
  'fsnotify.proto',
  'fdinfo.proto',
  'fs.proto',
  'timer.proto',
  'rlimit.proto',
  'siginfo.proto',
  'seccomp.proto',
] as const;

export function findProtoDir(from: string = __dirname): string {
  const beside = path.join(from, 'proto');
  if (fs.existsSync(path.join(beside, 'core.proto'))) return beside;
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) {
      const candidate = path.join(dir, 'images', 'proto');
      if (fs.existsSync(path.join(candidate, 'core.proto'))) return candidate;
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`images: cannot find the .proto files (looked in ${beside} and under images/proto of the repository root above ${from})`);
}

/** One message type's codec: protobufjs' reflected Type, or its generated copy (codecs-gen.ts). */
export interface Codec {
  name: string;
  encode(value: object): { finish(): Uint8Array };
  decode(bytes: Uint8Array): object;
  verify(value: object): string | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  toObject(message: object, options?: Protobuf.IConversionOptions): { [k: string]: any };
}

export interface Messages {
  inventory: Codec;
  pstree: Codec;
  core: Codec;
  ids: Codec;
  mm: Codec;
  vma: Codec;
  pagemapHead: Codec;
  pagemapEntry: Codec;
  file: Codec;
  fdinfo: Codec;
  fs: Codec;
  pipeData: Codec;
  ghostFile: Codec;
  remapFpath: Codec;
  memfdInode: Codec;
  seccomp: Codec;
}

let cached: Messages | undefined;
let loadedRoot: Protobuf.Root | undefined;

const TYPE_NAMES: Record<keyof Messages, string> = {
  inventory: 'inventory_entry',
  pstree: 'pstree_entry',
  core: 'core_entry',
  ids: 'task_kobj_ids_entry',
  mm: 'mm_entry',
  vma: 'vma_entry',
  pagemapHead: 'pagemap_head',
  pagemapEntry: 'pagemap_entry',
  file: 'file_entry',
  fdinfo: 'fdinfo_entry',
  fs: 'fs_entry',
  pipeData: 'pipe_data_entry',
  ghostFile: 'ghost_file_entry',
  remapFpath: 'remap_file_path_entry',
  memfdInode: 'memfd_inode_entry',
  seccomp: 'seccomp_entry',
};

/** sha256 over every .proto file of the directory (names and contents): what the generated codecs were made from. */
export function protoDigest(dir: string = findProtoDir()): string {
  const h = createHash('sha256');
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.proto')).sort()) h.update(`${f}\0`).update(fs.readFileSync(path.join(dir, f)));
  return h.digest('hex');
}

/** The .proto files parsed and resolved with protobufjs' reflection. */
export function loadRoot(): Protobuf.Root {
  const protobuf = reflection();
  const dir = findProtoDir();
  // keepCase: the field names stay CRIU's (mm_start_code, not mmStartCode), as in the .proto files.
  const root = new protobuf.Root().loadSync(PROTO_FILES.map((f) => path.join(dir, f)), { keepCase: true });
  root.resolveAll();
  return root;
}

/** The build's generated codecs (dist/images/codecs.js), if there are any this module may use. */
function generatedCodecs(): Record<string, Codec> | undefined {
  const fromSources = __filename.endsWith('.ts');
  let file = path.join(__dirname, 'codecs.js');
  if (fromSources) {
    let dir = __dirname;
    while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
    file = path.join(dir, 'dist', 'images', 'codecs.js');
  }
  if (!fs.existsSync(file)) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(file) as { protoDigest: string; types: Record<string, Codec> };
  // Built together with this file in dist/; from the sources, only if made from the same .proto files.
  if (fromSources && mod.protoDigest !== protoDigest()) return undefined;
  return mod.types;
}

/** The message types, loaded once. */
export function messages(): Messages {
  if (cached !== undefined) return cached;
  // Without long.js protobufjs decodes 64-bit fields to lossy doubles; sigaction masks and handler
  // addresses need all 64 bits, so refuse to run rather than corrupt them silently.
  if (!protobufMinimal.util.Long) throw new Error('images: protobufjs has no 64-bit integer support (long.js not found)');
  const generated = generatedCodecs();
  let lookup: (name: string) => Codec;
  if (generated !== undefined) {
    lookup = (name) => {
      const c = generated[name];
      if (c === undefined) throw new Error(`images: the generated codecs have no ${name} (rebuild: npm run build)`);
      return c;
    };
  } else {
    const root = loadRoot();
    loadedRoot = root;
    lookup = (name) => root.lookupType(name) as unknown as Codec;
  }
  cached = Object.fromEntries(Object.entries(TYPE_NAMES).map(([k, name]) => [k, lookup(name)])) as unknown as Messages;
  return cached;
}

/**
 * Loads the message types now and, without generated codecs, generates every type's code (protobufjs
 * does it on first use, ~0.15 s here for all of them): the dump calls this while the native core works
 * on its pool thread, so writing the images does not pay for it afterwards.
 */
export function warmUp(): void {
  messages();
  if (loadedRoot === undefined) return;
  const protobuf = reflection();
  const visit = (ns: Protobuf.NamespaceBase): void => {
    for (const child of ns.nestedArray) {
      if (child instanceof protobuf.Type) child.setup();
      if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) visit(child as Protobuf.NamespaceBase);
    }
  };
  visit(loadedRoot);
}

/** A 64-bit value in the shape protobufjs encodes (its LongBits reads low and high). */
export interface U64 {
  low: number;
  high: number;
  unsigned: boolean;
}

/** Encodes one entry. A message that fails verification is a bug in the writer, so it throws. */
export function encodeEntry(type: Codec, value: object): Uint8Array {
  const problem = type.verify(value);
  if (problem !== null) throw new Error(`images: ${type.name} does not verify: ${problem}`);
  return type.encode(value).finish();
}

/**
 * Decodes one entry into a plain object: 64-bit integers as decimal strings (exact, for BigInt),
 * absent optional fields absent, repeated fields always arrays, bytes as Buffers, enums as numbers.
 */
export function decodeEntry<T>(file: string, what: string, type: Codec, bytes: Uint8Array): T {
  let msg: object;
  try {
    msg = type.decode(bytes);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ImageError('EDECODE', file, `${what} is not a valid ${type.name}: ${why}`, { cause: err });
  }
  return type.toObject(msg, { longs: String, enums: Number, defaults: false, arrays: true }) as T;
}
