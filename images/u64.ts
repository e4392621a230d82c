/**
 * Conversions between the DumpedTask's numbers and bigints and protobuf 64-bit fields.
 *
 * Addresses and sizes are JS numbers in the DumpedTask (the native side never produces one at or
 * above 2^53); masks are bigints. On the wire both are uint64. The reader gets them back as decimal
 * strings (exact) and refuses, rather than rounds, a value a number cannot hold.
 */

import { ImageError } from './errors';
import { U64 } from './proto';

const U64_MAX = 0xffff_ffff_ffff_ffffn;

function bitsOf(v: bigint): U64 {
  return { low: Number(v & 0xffff_ffffn) | 0, high: Number(v >> 32n) | 0, unsigned: true };
}

/** Checks a writer input: a non-negative safe integer. */
export function requireSafe(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new ImageError('EINVAL', undefined, `${what} is ${v}, not an integer in [0, 2^53)`);
  }
  return v;
}

export function u64FromNumber(v: number, what: string): U64 {
  return bitsOf(BigInt(requireSafe(v, what)));
}

export function u64FromBigInt(v: bigint, what: string): U64 {
  if (v < 0n || v > U64_MAX) throw new ImageError('EINVAL', undefined, `${what} is ${v}, not a u64`);
  return bitsOf(v);
}

/** sint64 fields (vma_entry.fd). */
export function s64FromNumber(v: number): U64 {
  return { ...bitsOf(BigInt.asUintN(64, BigInt(v))), unsigned: false };
}

/** A uint64 as decoded (a decimal string, or a number for small values). */
export type WireU64 = string | number;

export function bigintOf(v: WireU64): bigint {
  return BigInt(v);
}

/** A uint64 that the DumpedTask keeps as a number: must be below 2^53. */
export function numberOf(v: WireU64, file: string, what: string): number {
  const b = BigInt(v);
  if (b > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ImageError('EDECODE', file, `${what} is 0x${b.toString(16)}, at or above 2^53`);
  }
  return Number(b);
}
