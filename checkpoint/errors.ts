/**
 * Errors of the checkpoint library's own checks (an unusable image directory, a bad pid). Errors from
 * the native core and the image reader keep their own `code` (ESRCH, EZOMBIE, EMAGIC, ECHECKSUM, ...)
 * and pass through unchanged.
 */
export class CheckpointError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CheckpointError';
    this.code = code;
  }
}
