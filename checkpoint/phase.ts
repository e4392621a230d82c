/**
 * The TypeScript side of the dump's stepping hook (native/src/core/phase.h): writes the phase's name and
 * a newline to the fd and waits for one byte (EOF: goes on). Synchronous on purpose: the dumper is held
 * exactly at that point, with nothing else of it running.
 */
import * as fs from 'fs';

export function phaseStep(fd: number | undefined, name: string): void {
  if (fd === undefined) return;
  try {
    fs.writeSync(fd, `${name}\n`);
  } catch {
    return; // nobody listens
  }
  const ack = Buffer.alloc(1);
  for (;;) {
    try {
      fs.readSync(fd, ack, 0, 1, null);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}
