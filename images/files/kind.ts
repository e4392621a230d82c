/**
 * The image side of the file layer (native/src/core/files): one module per kind of fd beside this file,
 * each writing its CRIU file_entry field (an eventfd's `efd`, an epoll's `epfd` with its tfd entries)
 * and reading it back, registered in registry.ts. The fd itself is an fdinfo_entry of the kind's type
 * as for every file. What only the kind knows travels in OpenFile.state (see native/lib/types.ts).
 */

import { FdKind, FileState, OpenFile } from '../../native/lib/types';
import { ImageError } from '../errors';

/** What files.img says of an fd of this kind: everything of its OpenFile but fd and cloexec. */
export type DecodedKindFile = Omit<OpenFile, 'fd' | 'cloexec'>;

export interface ImageFileKind {
  /** OpenFile.kind */
  kind: FdKind;
  /** fd_types value of its file_entry and fdinfo_entry. */
  fdType: number;
  /** Its field in file_entry (efd, epfd, sgfd, tfd, memfd). */
  field: string;
  /** The message for file_entry[field], of file id `id`. */
  encode(f: OpenFile, id: number, what: string): object;
  /** Back from that message (already decoded by protobufjs, 64-bit fields as strings). */
  decode(msg: Record<string, unknown>, file: string, what: string): DecodedKindFile;
}

/** A number of the state the kind must have. */
export function stateNum(f: OpenFile, key: string, what: string): bigint {
  const v = f.state?.num[key];
  if (v === undefined) throw new ImageError('EINVAL', undefined, `${what}: the ${f.kind} has no state.num.${key}`);
  if (typeof v !== 'bigint' && (!Number.isSafeInteger(v) || v < 0)) throw new ImageError('EINVAL', undefined, `${what}: state.num.${key} is ${v}, not an integer`);
  return BigInt(v);
}

/** A state's number as the DumpedTask keeps it: a number when it fits 2^53, else a bigint. */
export function numOf(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export function emptyState(): FileState {
  return { num: {}, text: {} };
}

/** A u32 field of a decoded message, or a clear EDECODE. */
export function u32Field(msg: Record<string, unknown>, key: string, file: string, what: string): number {
  const v = msg[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ImageError('EDECODE', file, `${what}: ${key} is missing or not a u32`);
  return v;
}

/** A u64 field of a decoded message (protobufjs gives a decimal string or a number). */
export function u64Field(msg: Record<string, unknown>, key: string, file: string, what: string): bigint {
  const v = msg[key];
  if (typeof v !== 'string' && typeof v !== 'number') throw new ImageError('EDECODE', file, `${what}: ${key} is missing`);
  return BigInt(v);
}

/** F_SETOWN is not saved: every kind writes a zero fown_entry. */
export const ZERO_FOWN = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };

/** The OpenFile part of an fd on an anonymous inode (no position, size or mode worth keeping). */
export function anonFile(kind: FdKind, path: string, flags: number, state: FileState): DecodedKindFile {
  return { kind, path, flags, pos: 0, size: 0, mode: 0, state };
}
