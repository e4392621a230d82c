/**
 * An error that ends a piece of work with a condition reason (kube/constants.ts Reason) and a message for
 * status and the Event. Anything else that escapes a worker is retried with backoff.
 */
export class WorkError extends Error {
  readonly reason: string;
  /** The errno-style code of the underlying failure (ESRCH, EMAGIC, ...), when there is one. */
  readonly code?: string;
  constructor(reason: string, message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options);
    this.name = 'WorkError';
    this.reason = reason;
    this.code = options?.code;
  }
}

/** "CODE: message" for an error from the native core or the image writer (they carry err.code). */
export function describeError(err: unknown): { code?: string; message: string } {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return { code: typeof code === 'string' ? code : undefined, message: err.message };
  }
  return { message: String(err) };
}
