/**
 * What a dump relied on in the machine it ran on: the kernel and the CPU's feature flags. A restored
 * process keeps using the instructions it found at start-up (glibc picks memcpy variants by CPU flags
 * once), so a host lacking a flag the dumping host had may crash it later, far from the restore.
 */
import { readFileSync } from 'node:fs';
import * as os from 'node:os';

export interface HostFacts {
  /** uname -r */
  kernel: string;
  /** uname -m */
  machine: string;
  /** The "flags" of the first CPU in /proc/cpuinfo, sorted (empty where the kernel shows none). */
  cpuFlags: string[];
}

export function hostFacts(cpuinfo = '/proc/cpuinfo'): HostFacts {
  let flags: string[] = [];
  try {
    const line = readFileSync(cpuinfo, 'utf8')
      .split('\n')
      .find((l) => /^(flags|Features)\s*:/.test(l));
    if (line) flags = [...new Set(line.slice(line.indexOf(':') + 1).trim().split(/\s+/).filter(Boolean))].sort();
  } catch {
    // no /proc (not Linux): nothing to compare later
  }
  return { kernel: os.release(), machine: os.machine(), cpuFlags: flags };
}

/** Why a checkpoint taken on `dumped` may not run here; empty when nothing is missing. */
export function hostMismatch(dumped: HostFacts, here: HostFacts = hostFacts()): string[] {
  const reasons: string[] = [];
  if (dumped.machine !== here.machine) reasons.push(`dumped on ${dumped.machine}, this host is ${here.machine}`);
  const have = new Set(here.cpuFlags);
  const missing = dumped.cpuFlags.filter((f) => !have.has(f));
  if (missing.length) reasons.push(`this CPU lacks flags the dumping CPU had: ${missing.join(' ')}`);
  return reasons;
}
