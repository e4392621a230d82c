/**
 * signalfd (native/src/core/files/signalfd.cc): a file_entry of type SIGNALFD carrying a signalfd_entry
 * (`sgfd`) with the mask of the signals it reads (state.num.sigmask, a bigint when bit 53 or above is set).
 */

import { OpenFile } from '../../native/lib/types';
import { u64FromBigInt } from '../u64';
import { FD_TYPE_SIGNALFD } from '../wire';
import { anonFile, DecodedKindFile, ImageFileKind, numOf, stateNum, u32Field, u64Field, ZERO_FOWN } from './kind';

function encode(f: OpenFile, id: number, what: string): object {
  return { id, flags: f.flags, fown: ZERO_FOWN, sigmask: u64FromBigInt(stateNum(f, 'sigmask', what), `${what}.state.num.sigmask`) };
}

function decode(msg: Record<string, unknown>, file: string, what: string): DecodedKindFile {
  const state = { num: { sigmask: numOf(u64Field(msg, 'sigmask', file, what)) }, text: {} };
  return anonFile('signalfd', 'anon_inode:[signalfd]', u32Field(msg, 'flags', file, what), state);
}

export const signalfdKind: ImageFileKind = { kind: 'signalfd', fdType: FD_TYPE_SIGNALFD, field: 'sgfd', encode, decode };
