/**
 * The two steps every user of the store takes around a checkpoint directory, in one place:
 *   publishCheckpoint  seal (signed when a key is given) and upload a finished local tree; the local copy
 *                      is the caller's to remove once this returns (the upload is then confirmed)
 *   fetchCheckpoint    download into a new local directory and verify the seal before anything reads it;
 *                      on any failure the partial download is removed
 */
import type { KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { SEAL_FILE, sealCheckpoint, type Seal } from '../images/seal';
import { verifySeal, type VerifyOptions } from '../images/seal-verify';
import type { ImageStore, TransferOptions } from './image-store';

export async function publishCheckpoint(store: ImageStore, key: string, dir: string, opts: TransferOptions & { signingKey?: KeyObject } = {}): Promise<{ url: string; bytes: number }> {
  // A seal left by an earlier try of the same dump is redone: the files may differ.
  await fsp.rm(`${dir}/${SEAL_FILE}`, { force: true });
  await sealCheckpoint(dir, { key: opts.signingKey, encryptionKeyId: store.encryptionKeyId });
  const { bytes } = await store.upload(key, dir, opts);
  return { url: store.urlOf(key), bytes };
}

export async function fetchCheckpoint(store: ImageStore, key: string, dir: string, opts: TransferOptions & VerifyOptions = {}): Promise<Seal> {
  try {
    await store.download(key, dir, opts);
    return await verifySeal(dir, opts);
  } catch (err) {
    await fsp.rm(dir, { recursive: true, force: true });
    throw err;
  }
}
