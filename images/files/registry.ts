/** Every kind of images/files/: one line per kind (adding a kind: its module and a line here). */

import { ImageFileKind } from './kind';
import { eventfdKind } from './eventfd';

export const IMAGE_FILE_KINDS: readonly ImageFileKind[] = [
  eventfdKind,
];

export function imageKindNamed(kind: string): ImageFileKind | undefined {
  return IMAGE_FILE_KINDS.find((k) => k.kind === kind);
}

export function imageKindOfType(fdType: number): ImageFileKind | undefined {
  return IMAGE_FILE_KINDS.find((k) => k.fdType === fdType);
}
