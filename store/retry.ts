/**
 * Retries with exponential backoff (full jitter) for store operations: an S3 server restarting, a
 * connection reset, a 5xx, an NFS hiccup. Errors that another try cannot fix (a wrong key, a missing
 * object, a refused path, a 4xx) fail at once.
 */
import { isStoreError, StoreError } from './errors';

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ESTALE', 'EIO', 'UND_ERR_SOCKET']);
const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeTooSkewed', 'SlowDown', 'InternalError', 'ServiceUnavailable', 'XMinioServerNotInitialized']);

export function isTransient(err: unknown): boolean {
  if (isStoreError(err)) return false;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const x = e as { code?: string; name?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown; message?: string };
    if (x.code && TRANSIENT_CODES.has(x.code)) return true;
    if (x.name && TRANSIENT_NAMES.has(x.name)) return true;
    if (x.$retryable) return true;
    const status = x.$metadata?.httpStatusCode;
    if (status !== undefined && (status >= 500 || status === 408 || status === 429)) return true;
    if (typeof x.message === 'string' && /socket hang up|ECONNREFUSED|ECONNRESET|other side closed|premature close/i.test(x.message)) return true;
  }
  return false;
}

export interface RetryOptions {
  /** Give up once this much time has passed since the first try. */
  forMs: number;
  /** First delay (doubled each try, up to maxDelayMs). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
  /** Told before each wait, for logs. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export async function withRetry<T>(what: string, fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const start = Date.now();
  const base = opts.baseDelayMs ?? 200;
  const max = opts.maxDelayMs ?? 5000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      opts.signal?.throwIfAborted();
      if (!isTransient(err)) throw err;
      const delay = Math.round(Math.random() * Math.min(max, base * 2 ** (attempt - 1))) + 50;
      if (Date.now() + delay - start > opts.forMs) {
        throw new StoreError('Unavailable', `${what}: the store kept failing for ${Math.round((Date.now() - start) / 1000)} s over ${attempt} tries: ${(err as Error).message}`, { cause: err });
      }
      opts.onRetry?.(err, attempt, delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
