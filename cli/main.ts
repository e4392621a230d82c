/**
 * The `cryopod` command: dump, restore and inspect local processes (no cluster needed).
 *
 *   cryopod dump --pid N --dir D [--leave-running [--full-freeze]] [--method parasite|vm_readv]
 *                                                    checkpoint a process (killed afterwards unless told)
 *   cryopod dump --check --pid N [--json]            what the tree holds and whether each can be saved
 *   cryopod dump ... --phase-fd N                     step through the dump: each phase's name is written
 *                                                    to fd N, which must then give one byte (EOF: go on)
 *   cryopod restore --dir D [--inherit-fd N:FD|N:PATH]...
 *                                                    restore it; prints the new PID. External pipes
 *                                                    (stdio to a process outside the tree) take the
 *                                                    given fd/path, saved stdio by default ours
 *   cryopod dump ... --to URL                         the same, into an image store (file:// or s3://: remote.ts)
 *   cryopod restore --from URL [--insecure-unsigned]  from an image store, after verifying its seal
 *   cryopod inspect D [--json]                        what a checkpoint holds
 */
import { allSaveable, checkProcess, dumpProcess, restoreProcess } from '../checkpoint';
import { formatCheck } from './check';
import { inspectImages, formatInspect } from './inspect';
import { parseArgs, requireString } from './args';
import { parseInheritFd } from './inherit-fd';
import { CliError } from './errors';
import { dumpTo, restoreFrom } from './remote';

const USAGE = `usage:
  cryopod dump --pid N (--dir D | --to URL) [--leave-running [--full-freeze]] [--method parasite|vm_readv]
  cryopod dump --check --pid N [--json]
  cryopod dump ... --phase-fd N      (writes each phase's name to fd N and waits for one byte there)
  cryopod restore (--dir D | --from URL [--insecure-unsigned]) [--inherit-fd N:FD|N:PATH]...
  cryopod inspect D [--json]
URL: file:///path/NAME or s3://bucket/prefix/NAME; credentials and keys from the environment
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, CRYOPOD_S3_ENDPOINT, CRYOPOD_SIGNING_KEY, CRYOPOD_TRUSTED_KEYS,
CRYOPOD_ENCRYPTION_KEYS: docs/storage.md)`;

function ms(seconds: number): string {
  return `${(seconds * 1000).toFixed(1)} ms`;
}

export async function main(argv: string[], out: NodeJS.WriteStream = process.stdout, err: NodeJS.WriteStream = process.stderr): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'dump': {
        const p = parseArgs(rest, { pid: true, dir: true, to: true, 'leave-running': false, 'full-freeze': false, method: true, check: false, json: false, 'phase-fd': true });
        const pid = Number(requireString(p, 'pid'));
        if (!Number.isInteger(pid) || pid <= 0) throw new CliError('EUSAGE', `--pid must be a positive integer`);
        if (p.flags.has('check')) {
          const reports = await checkProcess(pid);
          const ok = allSaveable(reports);
          out.write(p.flags.has('json') ? JSON.stringify(reports, null, 2) + '\n' : formatCheck(reports) + '\n');
          return ok ? 0 : 1;
        }
        const method = p.flags.get('method') ?? 'parasite';
        if (method !== 'parasite' && method !== 'vm_readv') throw new CliError('EUSAGE', `--method must be parasite or vm_readv`);
        const to = p.flags.get('to');
        if (p.flags.has('dir') === (typeof to === 'string')) throw new CliError('EUSAGE', 'dump takes exactly one of --dir and --to');
        const phaseArg = p.flags.get('phase-fd');
        const phaseFd = typeof phaseArg === 'string' ? Number(phaseArg) : undefined;
        if (phaseFd !== undefined && (!Number.isInteger(phaseFd) || phaseFd < 0)) throw new CliError('EUSAGE', `--phase-fd must be a file descriptor number`);
        const dump = (dir: string) =>
          dumpProcess({ pid, dir, leaveRunning: p.flags.has('leave-running'), method, shortFreeze: !p.flags.has('full-freeze'), phaseFd });
        let s!: Awaited<ReturnType<typeof dumpProcess>>;
        const where = typeof to === 'string' ? (await dumpTo(to, async (dir) => (s = await dump(dir)), err)).url : (s = await dump(requireString(p, 'dir'))).dir;
        out.write(
          `dumped pid ${s.pid}${s.tasks > 1 ? ` and ${s.tasks - 1} descendants` : ''} to ${where}: ${s.vmas} VMAs, ${s.pages} pages, ${s.bytes} bytes; ` +
            `frozen ${ms(s.frozenSeconds)}, total ${ms(s.totalSeconds)}\n`,
        );
        return 0;
      }
      case 'restore': {
        const p = parseArgs(rest, { dir: true, from: true, 'insecure-unsigned': false, 'inherit-fd': true });
        const inheritFds = (p.lists.get('inherit-fd') ?? []).map(parseInheritFd);
        const from = p.flags.get('from');
        if (p.flags.has('dir') === (typeof from === 'string')) throw new CliError('EUSAGE', 'restore takes exactly one of --dir and --from');
        const r =
          typeof from === 'string'
            ? await restoreFrom(from, { allowUnsigned: p.flags.has('insecure-unsigned') }, (dir) => restoreProcess({ dir, inheritFds }), err)
            : await restoreProcess({ dir: requireString(p, 'dir'), inheritFds });
        out.write(`${r.pid}\n`);
        err.write(`restored in ${ms(r.seconds)}\n`);
        return 0;
      }
      case 'inspect': {
        const p = parseArgs(rest, { json: false });
        if (p.positional.length !== 1) throw new CliError('EUSAGE', 'inspect takes one image directory');
        const report = await inspectImages(p.positional[0]);
        out.write(p.flags.has('json') ? JSON.stringify(report, null, 2) + '\n' : formatInspect(report) + '\n');
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
        out.write(USAGE + '\n');
        return command === undefined ? 2 : 0;
      default:
        throw new CliError('EUSAGE', `unknown command ${command}`);
    }
  } catch (e) {
    const error = e as Error & { code?: string };
    err.write(`cryopod ${command}: ${error.message}${error.code ? ` [${error.code}]` : ''}\n`);
    if (error.code === 'EUSAGE') err.write(USAGE + '\n');
    return 1;
  }
}
