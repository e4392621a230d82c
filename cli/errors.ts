/**
 * The CLI's own errors (bad arguments): coded like the checkpoint library's (err.code, printed as
 * `[CODE]`). Errors from the library, the native core and the image reader keep their own `code`
 * (ESRCH, EZOMBIE, EMAGIC, ECHECKSUM, ...) and pass through unchanged.
 */
import { CheckpointError } from '../checkpoint';

export class CliError extends CheckpointError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'CliError';
  }
}
