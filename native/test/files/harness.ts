/**
 * Shared by the file layer's tests: building their victims (native/test/files, protocol in
 * ../victims/victim.h), starting one with its stdout on a pipe read outside its tree, and reading a
 * FIFO without blocking the test.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { isAlive, makeTempDir, procStatus, readFileOrUndefined, startProgram, trackPid, Victim, waitFor } from '../harness';

const FILES_DIR = __dirname;
let built = false;

export function filesVictim(name: string): string {
  if (!built) {
    execFileSync('make', ['-s', '-C', FILES_DIR], { stdio: ['ignore', 'inherit', 'inherit'] });
    built = true;
  }
  return path.join(FILES_DIR, 'bin', name);
}

export async function startFilesVictim(name: string, args: string[] = []): Promise<Victim> {
  return startProgram(name, filesVictim(name), args);
}

/**
 * Starts `name` as `sh -c 'exec victim <workdir> | cat > <workdir>/before.log'` (detached): its stdout
 * is a pipe to a `cat` that is not in its tree, as a container's stdio to the runtime's shim.
 */
export async function startWithStdoutPipe(name: string): Promise<Victim & { log: string }> {
  const workdir = makeTempDir(name);
  const log = path.join(workdir, 'before.log');
  return { ...(await launchDetached(name, workdir, ['sh', '-c', `exec ${filesVictim(name)} ${workdir} | cat > ${log}`])), log };
}

/** Starts `name` under `script` (detached): its stdio is a pseudo-terminal whose master `script` holds. */
export async function startOnTerminal(name: string): Promise<Victim> {
  const workdir = makeTempDir(name);
  return launchDetached(name, workdir, ['script', '-qfc', `${filesVictim(name)} ${workdir}`, '/dev/null']);
}

async function launchDetached(name: string, workdir: string, argv: string[]): Promise<Victim> {
  const launcher = spawn('setsid', ['-f', ...argv], { stdio: 'ignore', cwd: '/' });
  await new Promise<void>((resolve, reject) => {
    launcher.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`setsid -f ${argv[0]} failed (exit ${code})`))));
    launcher.on('error', reject);
  });
  const ready = await waitFor(() => readFileOrUndefined(path.join(workdir, 'ready')), 30_000, `${name} to write ready`);
  const pid = Number(ready.trim());
  trackPid(pid);
  // The holder outside the tree (`script`, `sh`) goes too: once the victim is killed, `script` is left
  // stopped on its terminal and would outlive the test.
  const holder = Number(procStatus(pid)?.PPid ?? 0);
  if (holder > 1) trackPid(holder);
  if (!isAlive(pid)) throw new Error(`${name} (pid ${pid}) died right after it was ready`);
  return { name, pid, workdir };
}

/** A FIFO the test holds open read-write and non-blocking (so a writer's open never waits). */
export class FifoReader {
  readonly fd: number;
  private text = '';
  constructor(readonly path: string) {
    execFileSync('mkfifo', [path]);
    this.fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  }
  /** Everything read so far (reads what is there now). */
  read(): string {
    const buf = Buffer.alloc(65536);
    for (;;) {
      let n = 0;
      try {
        n = fs.readSync(this.fd, buf, 0, buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw err;
      }
      if (n <= 0) break;
      this.text += buf.subarray(0, n).toString();
    }
    return this.text;
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}
