/**
 * `--inherit-fd N:SOURCE` of `cryopod restore` (CRIU's --inherit-fd idea): saved fd N, an external pipe
 * (its other end was outside the checkpointed tree), is re-attached to SOURCE: a number is an fd of the
 * cryopod process itself (e.g. one a shell opened: `3>/tmp/log`), anything else a path opened with the
 * saved flags. Without one, a saved stdio fd takes cryopod's own fd 0, 1 or 2.
 */
import type { InheritFd } from '../checkpoint';
import { CliError } from './errors';

export function parseInheritFd(spec: string): InheritFd {
  const colon = spec.indexOf(':');
  const target = colon > 0 ? spec.slice(0, colon) : '';
  const source = colon > 0 ? spec.slice(colon + 1) : '';
  if (!/^\d+$/.test(target) || source === '') {
    throw new CliError('EUSAGE', `--inherit-fd ${JSON.stringify(spec)}: expected FD:SOURCE (e.g. 1:3 or 1:/tmp/out.fifo)`);
  }
  const fd = Number(target);
  if (/^\d+$/.test(source)) return { fd, restorerFd: Number(source) };
  return { fd, path: source };
}
