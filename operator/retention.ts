/**
 * Retention, pure: which Succeeded checkpoints of one pod fall beyond keep-last N (newest first by
 * finishedAt, then creation time, then name, so the choice is stable), and when a finished one's TTL ends.
 * Deleting a Checkpoint deletes its images through the finalizer, unless spec.retainImages.
 */
import type { Checkpoint } from '../crds/types';

export function beyondKeepLast(all: Checkpoint[], podName: string, keepLast: number): Checkpoint[] {
  if (keepLast <= 0) return [];
  const succeeded = all.filter((c) => c.spec.podName === podName && c.status?.phase === 'Succeeded' && !c.metadata.deletionTimestamp);
  const time = (c: Checkpoint) => Date.parse(c.status?.finishedAt ?? c.metadata.creationTimestamp ?? '') || 0;
  succeeded.sort(
    (a, b) =>
      time(b) - time(a) ||
      (Date.parse(b.metadata.creationTimestamp ?? '') || 0) - (Date.parse(a.metadata.creationTimestamp ?? '') || 0) ||
      (b.metadata.name ?? '').localeCompare(a.metadata.name ?? ''),
  );
  return succeeded.slice(keepLast);
}

/** Milliseconds until a finished checkpoint's TTL ends (<= 0: delete it now); undefined when no TTL applies. */
export function ttlRemainingMs(c: Checkpoint, ttlSeconds: number, now: Date): number | undefined {
  if (ttlSeconds <= 0 || !c.status?.finishedAt) return undefined;
  return Date.parse(c.status.finishedAt) + ttlSeconds * 1000 - now.getTime();
}
