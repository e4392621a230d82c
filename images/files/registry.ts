/** Every kind of images/files/: one line per kind (adding a kind: its module and a line here). */

import { ImageFileKind } from './kind';
import { epollKind } from './epoll';
import { eventfdKind } from './eventfd';
import { fifoKind } from './fifo';
import { inotifyKind } from './inotify';
import { memfdKind } from './memfd';
import { signalfdKind } from './signalfd';
import { timerfdKind } from './timerfd';
import { unixKind } from './unix';

export const IMAGE_FILE_KINDS: readonly ImageFileKind[] = [
  eventfdKind,
  epollKind,
  timerfdKind,
  signalfdKind,
  memfdKind,
  fifoKind,
  inotifyKind,
  unixKind,
];

export function imageKindNamed(kind: string): ImageFileKind | undefined {
  return IMAGE_FILE_KINDS.find((k) => k.kind === kind);
}

export function imageKindOfType(fdType: number): ImageFileKind | undefined {
  return IMAGE_FILE_KINDS.find((k) => k.fdType === fdType);
}
