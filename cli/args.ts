/** A strict argument parser for the CLI: unknown flags and missing values are errors, not guesses. */
import { CliError } from './errors';

export interface Parsed {
  flags: Map<string, string | true>;
  /** Every value of a flag given more than once (--inherit-fd 1:3 --inherit-fd 2:4), in order. */
  lists: Map<string, string[]>;
  positional: string[];
}

/** `spec` maps each flag to whether it takes a value. */
export function parseArgs(argv: string[], spec: Record<string, boolean>): Parsed {
  const flags = new Map<string, string | true>();
  const lists = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!(name in spec)) throw new CliError('EUSAGE', `unknown option --${name}`);
    if (spec[name]) {
      const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '') throw new CliError('EUSAGE', `--${name} needs a value`);
      flags.set(name, value);
      lists.set(name, [...(lists.get(name) ?? []), value]);
    } else {
      if (eq > 0) throw new CliError('EUSAGE', `--${name} takes no value`);
      flags.set(name, true);
    }
  }
  return { flags, lists, positional };
}

export function requireString(p: Parsed, name: string): string {
  const v = p.flags.get(name);
  if (typeof v !== 'string') throw new CliError('EUSAGE', `--${name} is required`);
  return v;
}
