/**
 * The CLI's own errors (bad arguments, unusable image directories). Errors from the native core and the
 * image reader keep their own `code` (ESRCH, EZOMBIE, EMAGIC, ECHECKSUM, ...) and pass through unchanged.
 */
export class CliError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.code = code;
  }
}
