/**
 * Orphan removal in the image store: checkpoints no Checkpoint object names (deleted while the operator
 * was down or with its finalizer removed by hand, or an upload whose agent died) and not written to for
 * an hour, removed. A Checkpoint with retainImages keeps its images only while it exists: once it is
 * deleted they are its user's to copy first, as docs/storage.md says.
 */
import type { Checkpoint } from '../crds/types';
import { removeOrphans, type ImageStore } from '../store';
import type { Ctx } from './context';
import { crPath } from './kube/paths';

export async function sweepOrphans(ctx: Pick<Ctx, 'client' | 'cfg' | 'log'>, store: ImageStore, minAgeMs = 3_600_000): Promise<string[]> {
  const list = await ctx.client.get<{ items: Checkpoint[] }>(crPath('checkpoints', ctx.cfg.namespace));
  const live = new Set(list.items.map((c) => `${c.metadata.namespace}/${c.metadata.name}-${c.metadata.uid}`));
  const removed = await removeOrphans(store, live, { minAgeMs, under: ctx.cfg.namespace, log: ctx.log });
  for (const key of removed) ctx.log(`orphan sweep: removed ${store.urlOf(key)} (no Checkpoint names it)`);
  return removed;
}
