/**
 * inotify (native/src/core/files/inotify.cc): a file_entry of type INOTIFY carrying an inotify_file_entry
 * (`ify`) with one inotify_wd_entry per watch: its wd, its mask and, in f_handle.path, the path of what it
 * watches (the handle itself is not kept). The state is items[] = { num: { wd, mask }, text: { path } }.
 */

import { OpenFile } from '../../native/lib/types';
import { ImageError } from '../errors';
import { MAX_PATH_BYTES } from '../limits';
import { FD_TYPE_INOTIFY } from '../wire';
import { anonFile, DecodedKindFile, ImageFileKind, u32Field, ZERO_FOWN } from './kind';

const MAX_WATCHES = 1 << 20;

function encode(f: OpenFile, id: number, what: string): object {
  const items = f.state?.items ?? [];
  if (items.length > MAX_WATCHES) throw new ImageError('EINVAL', undefined, `${what}: ${items.length} watches, over the cap of ${MAX_WATCHES}`);
  const wd = items.map((w, i) => {
    const p = w.text.path;
    const n = (k: string): number => {
      const v = w.num[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new ImageError('EINVAL', undefined, `${what}.state.items[${i}].${k} is ${String(v)}, not a u32`);
      return v;
    };
    if (typeof p !== 'string' || !p.startsWith('/') || Buffer.byteLength(p) > MAX_PATH_BYTES) throw new ImageError('EINVAL', undefined, `${what}.state.items[${i}] has no absolute path`);
    return { id, i_ino: 0, mask: n('mask'), ignored_mask: 0, s_dev: 0, wd: n('wd'), f_handle: { bytes: 0, type: 0, handle: [], path: p } };
  });
  return { id, flags: f.flags, fown: ZERO_FOWN, wd };
}

function decode(msg: Record<string, unknown>, file: string, what: string): DecodedKindFile {
  const wds = (msg.wd ?? []) as Array<Record<string, unknown>>;
  if (wds.length > MAX_WATCHES) throw new ImageError('ETOOBIG', file, `${what}: ${wds.length} watches, over the cap of ${MAX_WATCHES}`);
  const items = wds.map((w, i) => {
    const path = (w.f_handle as { path?: unknown } | undefined)?.path;
    if (typeof path !== 'string' || !path.startsWith('/')) throw new ImageError('EDECODE', file, `${what} watch ${i}: no path in f_handle (an image from CRIU keeps a handle only)`);
    return { num: { wd: u32Field(w, 'wd', file, what), mask: u32Field(w, 'mask', file, what) }, text: { path } };
  });
  return anonFile('inotify', 'anon_inode:inotify', u32Field(msg, 'flags', file, what), { num: {}, text: {}, ...(items.length ? { items } : {}) });
}

export const inotifyKind: ImageFileKind = { kind: 'inotify', fdType: FD_TYPE_INOTIFY, field: 'ify', encode, decode };
