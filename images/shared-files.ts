/**
 * Open file descriptions held by several fds (OpenFile.shareId), as CRIU writes them: one file_entry in
 * files.img, referred to by the fdinfo_entry of every holder, in one task or several of the tree.
 *
 * Writing: the first holder's fd (tree order) adds the entry; every later fd with the same shareId refers
 * to that entry's id (its type too). Reading: a file id referred to by two fdinfo entries or more is
 * shared; the holders get a shareId numbered from 1 in order of their first holder (tree, then fd
 * order), as the dump numbers them, so that a checkpoint read back equals what was dumped.
 */

import { DumpedTask } from '../native/lib/types';
import { ImageError } from './errors';

/** The entries already written for shared descriptions: shareId → the fdinfo id and type to refer to. */
export class SharedEntries {
  private readonly byShare = new Map<number, { id: number; type: number; kind: string }>();

  /** The entry an fd with `shareId` refers to, when an earlier holder wrote it. */
  earlier(shareId: number | undefined, kind: string, what: string): { id: number; type: number } | undefined {
    if (shareId === undefined) return undefined;
    const e = this.byShare.get(shareId);
    if (e !== undefined && e.kind !== kind) throw new ImageError('EINVAL', undefined, `${what} (kind ${kind}) shares its open file (shareId ${shareId}) with one of kind ${e.kind}`);
    return e;
  }

  remember(shareId: number | undefined, kind: string, entry: { id: number; type: number }): void {
    if (shareId !== undefined && !this.byShare.has(shareId)) this.byShare.set(shareId, { ...entry, kind });
  }
}

/** Sets shareId on the fds of `tasks` whose file id (fileIds[task][fd index]) more than one fd refers to. */
export function markShared(tasks: DumpedTask[], fileIds: number[][]): void {
  const holders = new Map<number, number>();
  for (const ids of fileIds) for (const id of ids) holders.set(id, (holders.get(id) ?? 0) + 1);
  const shareOf = new Map<number, number>();
  tasks.forEach((t, ti) =>
    t.files.forEach((f, fi) => {
      const id = fileIds[ti][fi];
      if ((holders.get(id) ?? 0) < 2) return;
      if (!shareOf.has(id)) shareOf.set(id, shareOf.size + 1);
      f.shareId = shareOf.get(id);
    }),
  );
}
