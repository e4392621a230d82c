/**
 * eventfd (native/src/core/files/eventfd.cc): a file_entry of type EVENTFD carrying an eventfd_file_entry
 * (`efd`): the O_* flags, the counter, and EFD_SEMAPHORE in cryopod_semaphore. The path is the
 * kernel's "anon_inode:[eventfd]", the mode 0 (an anonymous inode has none worth keeping).
 */

import { OpenFile } from '../../native/lib/types';
import { ImageError } from '../errors';
import { u64FromBigInt } from '../u64';
import { FD_TYPE_EVENTFD } from '../wire';
import { anonFile, DecodedKindFile, ImageFileKind, numOf, stateNum, u32Field, u64Field, ZERO_FOWN } from './kind';

const EVENTFD_PATH = 'anon_inode:[eventfd]';

function encode(f: OpenFile, id: number, what: string): object {
  const counter = stateNum(f, 'counter', what);
  if (counter >= 0xffff_ffff_ffff_ffffn) throw new ImageError('EINVAL', undefined, `${what}: eventfd counter ${counter} is above the maximum`);
  return { id, flags: f.flags, fown: ZERO_FOWN, counter: u64FromBigInt(counter, `${what}.state.num.counter`), cryopod_semaphore: stateNum(f, 'semaphore', what) !== 0n };
}

function decode(msg: Record<string, unknown>, file: string, what: string): DecodedKindFile {
  const counter = u64Field(msg, 'counter', file, what);
  if (counter >= 0xffff_ffff_ffff_ffffn) throw new ImageError('EDECODE', file, `${what}: eventfd counter ${counter} is above the maximum`);
  const state = { num: { counter: numOf(counter), semaphore: msg.cryopod_semaphore === true ? 1 : 0 }, text: {} };
  return anonFile('eventfd', EVENTFD_PATH, u32Field(msg, 'flags', file, what), state);
}

export const eventfdKind: ImageFileKind = { kind: 'eventfd', fdType: FD_TYPE_EVENTFD, field: 'efd', encode, decode };
