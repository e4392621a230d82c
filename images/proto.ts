/**
 * Loads Cryopod's own .proto files (images/proto/, CRIU-compatible, see proto/README.md) with
 * protobufjs at run time, and wraps encoding and decoding so that every failure is an ImageError.
 *
 * The .proto files stay in the source tree: this module runs from images/ under ts-jest and from
 * dist/images/ after tsc, so it looks for proto/ beside itself first, then under images/proto of the
 * repository root (the first directory upwards with a package.json).
 */

import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { ImageError } from './errors';

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

export interface Messages {
  inventory: protobuf.Type;
  pstree: protobuf.Type;
  core: protobuf.Type;
  ids: protobuf.Type;
  mm: protobuf.Type;
  vma: protobuf.Type;
  pagemapHead: protobuf.Type;
  pagemapEntry: protobuf.Type;
  file: protobuf.Type;
  fdinfo: protobuf.Type;
  fs: protobuf.Type;
  pipeData: protobuf.Type;
  ghostFile: protobuf.Type;
  remapFpath: protobuf.Type;
  memfdInode: protobuf.Type;
  seccomp: protobuf.Type;
}

let cached: Messages | undefined;
let loadedRoot: protobuf.Root | undefined;

/** The message types, loaded once. */
export function messages(): Messages {
  if (cached !== undefined) return cached;
  // Without long.js protobufjs decodes 64-bit fields to lossy doubles; sigaction masks and handler
  // addresses need all 64 bits, so refuse to run rather than corrupt them silently.
  if (!protobuf.util.Long) throw new Error('images: protobufjs has no 64-bit integer support (long.js not found)');
  const dir = findProtoDir();
  // keepCase: the field names stay CRIU's (mm_start_code, not mmStartCode), as in the .proto files.
  const root = new protobuf.Root().loadSync(PROTO_FILES.map((f) => path.join(dir, f)), { keepCase: true });
  root.resolveAll();
  loadedRoot = root;
  cached = {
    inventory: root.lookupType('inventory_entry'),
    pstree: root.lookupType('pstree_entry'),
    core: root.lookupType('core_entry'),
    ids: root.lookupType('task_kobj_ids_entry'),
    mm: root.lookupType('mm_entry'),
    vma: root.lookupType('vma_entry'),
    pagemapHead: root.lookupType('pagemap_head'),
    pagemapEntry: root.lookupType('pagemap_entry'),
    file: root.lookupType('file_entry'),
    fdinfo: root.lookupType('fdinfo_entry'),
    fs: root.lookupType('fs_entry'),
    pipeData: root.lookupType('pipe_data_entry'),
    ghostFile: root.lookupType('ghost_file_entry'),
    remapFpath: root.lookupType('remap_file_path_entry'),
    memfdInode: root.lookupType('memfd_inode_entry'),
    seccomp: root.lookupType('seccomp_entry'),
  };
  return cached;
}

/**
 * Loads the .proto files and generates every message type's code now (protobufjs does it on first use,
 * ~0.15 s here for all of them): the dump calls this while the native core works on its pool thread, so
 * writing the images does not pay for it afterwards.
 */
export function warmUp(): void {
  messages();
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const child of ns.nestedArray) {
      if (child instanceof protobuf.Type) child.setup();
      if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) visit(child as protobuf.NamespaceBase);
    }
  };
  if (loadedRoot) visit(loadedRoot);
}

/** A 64-bit value in the shape protobufjs encodes (its LongBits reads low and high). */
export interface U64 {
  low: number;
  high: number;
  unsigned: boolean;
}

/** Encodes one entry. A message that fails verification is a bug in the writer, so it throws. */
export function encodeEntry(type: protobuf.Type, value: object): Uint8Array {
  const problem = type.verify(value);
  if (problem !== null) throw new Error(`images: ${type.name} does not verify: ${problem}`);
  return type.encode(value).finish();
}

/**
 * Decodes one entry into a plain object: 64-bit integers as decimal strings (exact, for BigInt),
 * absent optional fields absent, repeated fields always arrays, bytes as Buffers, enums as numbers.
 */
export function decodeEntry<T>(file: string, what: string, type: protobuf.Type, bytes: Uint8Array): T {
  let msg: protobuf.Message;
  try {
    msg = type.decode(bytes);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ImageError('EDECODE', file, `${what} is not a valid ${type.name}: ${why}`, { cause: err });
  }
  return type.toObject(msg, { longs: String, enums: Number, defaults: false, arrays: true }) as T;
}
