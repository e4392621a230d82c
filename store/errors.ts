/**
 * Errors of the image store. `reason` is a stable word a caller can branch on and a status can show;
 * the message says what and where in words.
 */
export type StoreReason =
  /** The location URL or a checkpoint key is malformed or not allowed. */
  | 'BadLocation'
  /** The checkpoint (or one of its files) is not in the store. */
  | 'NotFound'
  /** A checkpoint is already published under this key: checkpoints are immutable. */
  | 'Exists'
  /** A path in the store would leave its root (a symlink, "..", a non-directory on the way). */
  | 'OutsideRoot'
  /** Decryption failed: a wrong key, a missing key, or bytes that were altered or cut short. */
  | 'Decrypt'
  /** The store refused the credentials or the request (HTTP 401/403). */
  | 'Denied'
  /** The store could not be reached or failed, and retries did not help. */
  | 'Unavailable';

export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    readonly reason: StoreReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isStoreError(err: unknown, reason?: StoreReason): err is StoreError {
  return err instanceof StoreError && (reason === undefined || err.reason === reason);
}
