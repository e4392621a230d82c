/**
 * The reader of a stepping hook (`--phase-fd`, DumpOptions/RestoreOptions phaseFd) on fd 3 of a child
 * started with a 'pipe' there: each phase's name, as the child reaches it, goes to `onPhase`; the child
 * waits at that phase until `step()`.
 */
import type { ChildProcess } from 'child_process';

export function phaseHook(child: ChildProcess, onPhase: (name: string) => void): { step: () => void } {
  const hook = child.stdio[3] as unknown as import('net').Socket;
  hook.on('error', () => undefined);
  let buf = '';
  hook.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const name = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      onPhase(name);
    }
  });
  return { step: () => void hook.write('x') };
}
