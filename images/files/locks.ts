/**
 * File locks of a regular file or directory fd (native/src/core/files/locks.cc): the state's items
 * { lock: 0 flock | 1 POSIX | 2 OFD, write, start, len } ↔ reg_file_entry.cryopod_locks.
 */

import { FileState, OpenFile } from '../../native/lib/types';
import { ImageError } from '../errors';
import { u64FromBigInt } from '../u64';
import { RegFileMsg } from '../wire';

const MAX_LOCKS = 4096;

export function encodeLocks(f: OpenFile, what: string): object[] {
  const items = (f.state?.items ?? []).filter((i) => i.num.lock !== undefined);
  if (items.length > MAX_LOCKS) throw new ImageError('EINVAL', undefined, `${what}: ${items.length} locks, over the cap of ${MAX_LOCKS}`);
  return items.map((i, n) => {
    const lock = i.num.lock;
    if (lock !== 0 && lock !== 1 && lock !== 2) throw new ImageError('EINVAL', undefined, `${what}.state.items[${n}].lock is ${String(lock)}, not 0, 1 or 2`);
    const w = `${what}.state.items[${n}]`;
    return { lock, write: i.num.write === 1, start: u64FromBigInt(BigInt(i.num.start ?? 0), `${w}.start`), len: u64FromBigInt(BigInt(i.num.len ?? 0), `${w}.len`) };
  });
}

/** The state of a REG fd with locks (undefined without). */
export function decodeLocks(reg: RegFileMsg, file: string): FileState | undefined {
  const locks = reg.cryopod_locks ?? [];
  if (locks.length === 0) return undefined;
  if (locks.length > MAX_LOCKS) throw new ImageError('ETOOBIG', file, `file id ${reg.id}: ${locks.length} locks, over the cap of ${MAX_LOCKS}`);
  const items = locks.map((l) => {
    if (l.lock > 2) throw new ImageError('EDECODE', file, `file id ${reg.id}: lock kind ${l.lock} is not 0, 1 or 2`);
    const big = (v: string | number): number | bigint => (BigInt(v) <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : BigInt(v));
    return { num: { lock: l.lock, write: l.write ? 1 : 0, start: big(l.start), len: big(l.len) }, text: {} };
  });
  return { num: {}, text: {}, items };
}
