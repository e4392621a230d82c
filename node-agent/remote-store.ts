/**
 * The image store the agent publishes to and restores from, when one is configured (--store-url):
 * the checkpoint is dumped into the local storage root as before, then sealed (signed with the
 * Secret's signing key), uploaded, and only then removed locally; a restore downloads it into the local
 * root and verifies its seal before the checkpoint library reads it.
 */
import type { KeyObject } from 'node:crypto';
import { fetchCheckpoint, openStore, publishCheckpoint, storeSecretsFromDir, type ImageStore, type Progress } from '../store';
import type { CheckpointRef } from './storage';

export interface RemoteStore {
  store: ImageStore;
  signingKey?: KeyObject;
  trustedKeys: KeyObject[];
  allowUnsigned: boolean;
}

export function remoteStoreFrom(cfg: { storeUrl?: string; storeSecretDir?: string; allowUnsigned?: boolean; storeRetrySeconds?: number }): RemoteStore | undefined {
  if (!cfg.storeUrl) return undefined;
  const secrets = storeSecretsFromDir(cfg.storeSecretDir);
  return { store: openStore(cfg.storeUrl, { ...secrets.options, retryForMs: (cfg.storeRetrySeconds ?? 120) * 1000 }), signingKey: secrets.signingKey, trustedKeys: secrets.trustedKeys, allowUnsigned: cfg.allowUnsigned ?? false };
}

/** The key of a Checkpoint's images in the store: NAMESPACE/NAME-UID, as in the local root. */
export function storeKey(ref: CheckpointRef): string {
  return `${ref.namespace}/${ref.name}-${ref.uid}`;
}

/** Passes progress on at most every `everyMs` (a status write each time), and always the last report. */
function throttled(progress: (p: Progress) => void, everyMs: number): (p: Progress) => void {
  let last = 0;
  return (p) => {
    if (Date.now() - last < everyMs && p.doneBytes < p.totalBytes) return;
    last = Date.now();
    progress(p);
  };
}

/** Seals and uploads a local checkpoint directory; calls progress at most every `everyMs`. */
export async function upload(remote: RemoteStore, ref: CheckpointRef, dir: string, progress: (p: Progress) => void, everyMs = 2000): Promise<{ url: string; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const { url } = await publishCheckpoint(remote.store, storeKey(ref), dir, { signingKey: remote.signingKey, onProgress: throttled(progress, everyMs) });
  return { url, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/**
 * Downloads a checkpoint into dir (new) and verifies its seal; throws SealError or StoreError with the
 * reason. Calls progress at most every `everyMs`.
 */
export async function download(remote: RemoteStore, ref: CheckpointRef, dir: string, progress: (p: Progress) => void = () => undefined, everyMs = 2000): Promise<void> {
  await fetchCheckpoint(remote.store, storeKey(ref), dir, { trusted: remote.trustedKeys, allowUnsigned: remote.allowUnsigned, onProgress: throttled(progress, everyMs) });
}
