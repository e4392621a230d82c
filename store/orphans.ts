/**
 * Orphans: checkpoints in the store that no Checkpoint object names any more (deleted while the
 * operator was down, or an upload whose agent died). Pure selection over a store listing; the operator
 * supplies the keys of the Checkpoints that exist and removes what this returns.
 */
import type { ImageStore, StoredCheckpoint } from './image-store';

export interface OrphanOptions {
  /** Only what was last written at least this long ago: an upload in progress is not an orphan (default 1 h). */
  minAgeMs?: number;
  /** List only below this key prefix (a namespace). */
  under?: string;
  now?: Date;
}

export async function findOrphans(store: ImageStore, liveKeys: Set<string>, opts: OrphanOptions = {}): Promise<StoredCheckpoint[]> {
  const now = (opts.now ?? new Date()).getTime();
  const minAge = opts.minAgeMs ?? 3_600_000;
  return (await store.list(opts.under)).filter((c) => !liveKeys.has(c.key) && now - c.modified.getTime() >= minAge);
}

/** Removes the orphans found; returns their keys. One failing removal does not stop the others. */
export async function removeOrphans(store: ImageStore, liveKeys: Set<string>, opts: OrphanOptions & { log?: (msg: string) => void } = {}): Promise<string[]> {
  const removed: string[] = [];
  for (const c of await findOrphans(store, liveKeys, opts)) {
    try {
      await store.remove(c.key);
      removed.push(c.key);
    } catch (err) {
      opts.log?.(`orphan ${c.url}: not removed: ${(err as Error).message}`);
    }
  }
  return removed;
}
