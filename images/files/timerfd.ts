/**
 * timerfd (native/src/core/files/timerfd.cc): a file_entry of type TIMERFD carrying a timerfd_entry
 * (`tfd`). The state's numbers map onto CRIU's fields: clockid, ticks, settime_flags, value_sec/_nsec
 * (vsec/vnsec: the time left), interval_sec/_nsec (isec/insec).
 */

import { OpenFile } from '../../native/lib/types';
import { ImageError } from '../errors';
import { u64FromBigInt } from '../u64';
import { FD_TYPE_TIMERFD } from '../wire';
import { anonFile, DecodedKindFile, ImageFileKind, numOf, stateNum, u32Field, u64Field, ZERO_FOWN } from './kind';

/** state name → timerfd_entry field, 64-bit ones. */
const WIDE = { ticks: 'ticks', value_sec: 'vsec', value_nsec: 'vnsec', interval_sec: 'isec', interval_nsec: 'insec' } as const;
const NS = 1_000_000_000n;

function encode(f: OpenFile, id: number, what: string): object {
  const msg: Record<string, unknown> = { id, flags: f.flags, fown: ZERO_FOWN };
  for (const key of ['clockid', 'settime_flags'] as const) {
    const v = stateNum(f, key, what);
    if (v > 0xffff_ffffn) throw new ImageError('EINVAL', undefined, `${what}: state.num.${key} is ${v}, not a u32`);
    msg[key] = Number(v);
  }
  for (const [key, field] of Object.entries(WIDE)) msg[field] = u64FromBigInt(stateNum(f, key, what), `${what}.state.num.${key}`);
  if (stateNum(f, 'value_nsec', what) >= NS || stateNum(f, 'interval_nsec', what) >= NS) {
    throw new ImageError('EINVAL', undefined, `${what}: a nanosecond field is not below one second`);
  }
  return msg;
}

function decode(msg: Record<string, unknown>, file: string, what: string): DecodedKindFile {
  const num: Record<string, number | bigint> = {
    clockid: u32Field(msg, 'clockid', file, what),
    settime_flags: u32Field(msg, 'settime_flags', file, what),
  };
  for (const [key, field] of Object.entries(WIDE)) num[key] = numOf(u64Field(msg, field, file, what));
  if (BigInt(num.value_nsec) >= NS || BigInt(num.interval_nsec) >= NS) throw new ImageError('EDECODE', file, `${what}: a nanosecond field is not below one second`);
  return anonFile('timerfd', 'anon_inode:[timerfd]', u32Field(msg, 'flags', file, what), { num, text: {} });
}

export const timerfdKind: ImageFileKind = { kind: 'timerfd', fdType: FD_TYPE_TIMERFD, field: 'tfd', encode, decode };
