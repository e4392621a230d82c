/**
 * epoll (native/src/core/files/epoll.cc): a file_entry of type EVENTPOLL carrying an
 * eventpoll_file_entry (`epfd`) with one eventpoll_tfd_entry per registered target: its fd number, its
 * events mask and its data (64 bits: a bigint in the state above 2^53). The state is
 * items[] = { num: { tfd, events, data } }, in the kernel's order.
 */

import { OpenFile } from '../../native/lib/types';
import { ImageError } from '../errors';
import { MAX_FDS } from '../limits';
import { u64FromBigInt } from '../u64';
import { FD_TYPE_EVENTPOLL } from '../wire';
import { anonFile, DecodedKindFile, ImageFileKind, numOf, u32Field, u64Field, ZERO_FOWN } from './kind';

const EPOLL_PATH = 'anon_inode:[eventpoll]';

function u32Of(v: number | bigint | undefined, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new ImageError('EINVAL', undefined, `${what} is ${String(v)}, not a u32`);
  return v;
}

function encode(f: OpenFile, id: number, what: string): object {
  const items = f.state?.items ?? [];
  if (items.length > MAX_FDS) throw new ImageError('EINVAL', undefined, `${what}: ${items.length} epoll targets, over the cap of ${MAX_FDS}`);
  const tfd = items.map((t, i) => {
    const w = `${what}.state.items[${i}]`;
    const data = t.num.data;
    if (data === undefined) throw new ImageError('EINVAL', undefined, `${w} has no data`);
    return { id, tfd: u32Of(t.num.tfd, `${w}.tfd`), events: u32Of(t.num.events, `${w}.events`), data: u64FromBigInt(BigInt(data), `${w}.data`) };
  });
  return { id, flags: f.flags, fown: ZERO_FOWN, tfd };
}

function decode(msg: Record<string, unknown>, file: string, what: string): DecodedKindFile {
  const tfds = (msg.tfd ?? []) as Array<Record<string, unknown>>;
  if (tfds.length > MAX_FDS) throw new ImageError('ETOOBIG', file, `${what}: ${tfds.length} epoll targets, over the cap of ${MAX_FDS}`);
  const items = tfds.map((t, i) => {
    const w = `${what} target ${i}`;
    return { num: { tfd: u32Field(t, 'tfd', file, w), events: u32Field(t, 'events', file, w), data: numOf(u64Field(t, 'data', file, w)) }, text: {} };
  });
  return anonFile('epoll', EPOLL_PATH, u32Field(msg, 'flags', file, what), { num: {}, text: {}, ...(items.length > 0 ? { items } : {}) });
}

export const epollKind: ImageFileKind = { kind: 'epoll', fdType: FD_TYPE_EVENTPOLL, field: 'epfd', encode, decode };
