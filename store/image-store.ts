/**
 * The one image-store interface the agent, the operator and the CLI use, whatever the backend
 * (fs-store.ts, s3-store.ts; open-store.ts picks one by URL).
 *
 * A checkpoint is a local directory tree (pod.json, one directory of CRIU images per container, the
 * signed seal: images/seal.ts). upload() publishes it under a key as a whole: a reader never sees a
 * half-written checkpoint. The seal (SEAL_FILE) is what marks a checkpoint complete: the file store
 * renames the finished tree into place, the S3 store writes the seal object last.
 */
import type { KeyRing } from './cipher';

export interface Progress {
  /** Bytes of plain image data done so far (before encryption). */
  doneBytes: number;
  totalBytes: number;
  /** The file being transferred now, relative to the checkpoint. */
  file: string;
}

export interface TransferOptions {
  /** Called as bytes move (at most every few MiB, and at the end). */
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

export interface StoredCheckpoint {
  key: string;
  /** The URL of this checkpoint (location + '/' + key): what status.imageLocation says. */
  url: string;
  /** False for a checkpoint whose upload never finished (no seal): only orphan removal wants those. */
  complete: boolean;
  /** When its newest object or file was written (for ageing out abandoned uploads). */
  modified: Date;
}

export interface ImageStore {
  /** The location URL, without a key. */
  readonly url: string;
  /** The key id uploads are encrypted with (seal with it: sealCheckpoint's encryptionKeyId); none: plain. */
  readonly encryptionKeyId?: string;
  /** The URL of one checkpoint in this store. */
  urlOf(key: string): string;
  /**
   * Publishes the tree under localDir as checkpoint `key`, files streamed (encrypted when the store has
   * a write key), the seal last. Refuses an existing complete checkpoint (reason Exists); an unfinished
   * one under the same key (a crashed upload) is replaced. Retries store errors with backoff.
   */
  upload(key: string, localDir: string, opts?: TransferOptions): Promise<{ bytes: number }>;
  /** Writes checkpoint `key` into localDir (which must be empty or missing), decrypting as it goes. */
  download(key: string, localDir: string, opts?: TransferOptions): Promise<{ bytes: number }>;
  /** One small file of a checkpoint (pod.json, the seal), decrypted, at most maxBytes. */
  readFile(key: string, name: string, maxBytes?: number): Promise<Buffer>;
  /** True when a complete checkpoint is published under key. */
  exists(key: string): Promise<boolean>;
  /** Every checkpoint below `under` (a key prefix: a namespace), complete or not. */
  list(under?: string): Promise<StoredCheckpoint[]>;
  /** Removes a checkpoint, complete or not; 'absent' when there was nothing. */
  remove(key: string): Promise<'removed' | 'absent'>;
}

export interface StoreOptions {
  /** Encrypts what upload() writes with keys.current, and decrypts with whichever key a file names. */
  keys?: KeyRing;
  /** S3: credentials and endpoint, never from a CR (a Secret in the cluster, env or flags in the CLI). */
  s3?: S3Options;
  /** How long upload and download keep retrying a failing store, in total (default 120 s). */
  retryForMs?: number;
}

export interface S3Options {
  /** http(s)://host:port of an S3-compatible server; AWS when unset. */
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Path-style URLs (bucket in the path): what MinIO and most self-hosted servers need. */
  forcePathStyle?: boolean;
  /** Multipart part size (default 8 MiB) and parts in flight per file (default 4). */
  partBytes?: number;
  parallelParts?: number;
  /** Files fetched at once by a download (default 4), each as one GET. */
  parallelGets?: number;
}
