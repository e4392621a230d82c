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
 *   cryopod restore ... --lazy                        the task runs before its memory is resident; the
 *                                                    command serves its pages until it is (lazy-report.ts)
 *   cryopod dump ... --to URL                         the same, into an image store (file:// or s3://: remote.ts)
 *   cryopod restore --from URL [--insecure-unsigned]  from an image store, after verifying its seal
 *   cryopod restore ... --trust-saved-credentials     as root: the saved uid/gid even if another user
 *                                                    could have written the images (checkpoint/local-creds.ts)
 *   cryopod inspect D [--json]                        what a checkpoint holds
 */
import { allSaveable, checkProcess, dumpProcess, restoreProcess } from '../checkpoint';
import { formatCheck } from './check';
import { parseArgs, requireString } from './args';
import { parseInheritFd } from './inherit-fd';
import { CliError } from './errors';
import { reportLazy } from './lazy-report';

// The image store (remote.ts: the AWS SDK, ~0.3 s to load here) and inspect are loaded only by the
// commands that use them: a local dump or restore is timed from the command's start, its startup included.
const remote = (): Promise<typeof import('./remote')> => import('./remote');

const USAGE = `usage:
  cryopod dump --pid N (--dir D | --to URL) [--leave-running [--full-freeze]] [--method parasite|vm_readv]
  cryopod dump --check --pid N [--json]
  cryopod dump ... --phase-fd N      (writes each phase's name to fd N and waits for one byte there)
  cryopod restore (--dir D | --from URL [--insecure-unsigned]) [--trust-saved-credentials] [--inherit-fd N:FD|N:PATH]... [--lazy]
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
        const where = typeof to === 'string' ? (await (await remote()).dumpTo(to, async (dir) => (s = await dump(dir)), err)).url : (s = await dump(requireString(p, 'dir'))).dir;
        out.write(
          `dumped pid ${s.pid}${s.tasks > 1 ? ` and ${s.tasks - 1} descendants` : ''} to ${where}: ${s.vmas} VMAs, ${s.pages} pages, ${s.bytes} bytes; ` +
            `frozen ${ms(s.frozenSeconds)}, total ${ms(s.totalSeconds)}\n`,
        );
        return 0;
      }
      case 'restore': {
        const p = parseArgs(rest, { dir: true, from: true, 'insecure-unsigned': false, 'trust-saved-credentials': false, 'inherit-fd': true, lazy: false });
        const inheritFds = (p.lists.get('inherit-fd') ?? []).map(parseInheritFd);
        const from = p.flags.get('from');
        const trustSavedCredentials = p.flags.has('trust-saved-credentials');
        if (p.flags.has('dir') === (typeof from === 'string')) throw new CliError('EUSAGE', 'restore takes exactly one of --dir and --from');
        const lazy = p.flags.has('lazy') ? { lazy: true } : {};
        if (p.flags.has('lazy')) {
          // The command serves the task's pages: it returns once they are all in (from the download's
          // temporary directory too: the pager holds the image open).
          const serve = async (dir: string, signed: boolean | undefined): Promise<void> =>
            reportLazy(await restoreProcess({ dir, inheritFds, trustSavedCredentials, ...lazy, ...(signed === undefined ? {} : { unsigned: !signed }) }), out, err);
          if (typeof from === 'string') await (await remote()).restoreFrom(from, { allowUnsigned: p.flags.has('insecure-unsigned') }, serve, err);
          else await serve(requireString(p, 'dir'), undefined);
          return 0;
        }
        const r =
          typeof from === 'string'
            ? await (await remote()).restoreFrom(from, { allowUnsigned: p.flags.has('insecure-unsigned') }, (dir, signed) => restoreProcess({ dir, inheritFds, unsigned: !signed, trustSavedCredentials }), err)
            : await restoreProcess({ dir: requireString(p, 'dir'), inheritFds, trustSavedCredentials });
        out.write(`${r.pid}\n`);
        err.write(`restored in ${ms(r.seconds)} (verify ${ms(r.verifySeconds)}, morph ${ms(r.morphSeconds)})\n`);
        return 0;
      }
      case 'inspect': {
        const p = parseArgs(rest, { json: false });
        if (p.positional.length !== 1) throw new CliError('EUSAGE', 'inspect takes one image directory');
        const { inspectImages, inspectJson, inspectLines } = await import('./inspect');
        const report = await inspectImages(p.positional[0]);
        await writeInBatches(out, p.flags.has('json') ? withFinalNewline(inspectJson(report)) : withNewlines(inspectLines(report)));
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

function* withNewlines(lines: Iterable<string>): Generator<string> {
  for (const line of lines) yield `${line}\n`;
}

function* withFinalNewline(pieces: Iterable<string>): Generator<string> {
  yield* pieces;
  yield '\n';
}

/**
 * Writes the pieces as they come, a batch at a time, waiting for the stream to drain when it asks to
 * (a pipe to a slow reader): the output of a large checkpoint is never held as one string, and none of
 * it is still queued when the command exits.
 */
async function writeInBatches(out: NodeJS.WritableStream, pieces: Iterable<string>): Promise<void> {
  let batch: string[] = [];
  const flush = async (): Promise<void> => {
    const more = out.write(batch.join(''));
    batch = [];
    if (!more) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  };
  for (const piece of pieces) {
    batch.push(piece);
    if (batch.length === 1024) await flush();
  }
  if (batch.length > 0) await flush();
}
