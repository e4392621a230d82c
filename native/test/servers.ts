/**
 * Real servers for the native tests, started as a container starts its program: detached (`setsid -f`),
 * every inherited fd closed (CLEAN_EXEC), stdout and stderr on one pipe whose reader (`cat > before.log`)
 * is outside the dumped tree, as a container's stdio go to the runtime's shim. Each program writes its
 * pid to <workdir>/ready, and a server its port to <workdir>/port.
 *
 *   startServer ──► ask it (httpGet / a Poller) ──► dumpProcess ──► restoreOnNewPipes ──► ask again
 *                                                   (kill or            stdout/stderr on a FIFO
 *                                                    --leave-running)   the test reads
 *
 * Also `cryopod dump --check` through the built CLI, for the verdict per object.
 */
import { execFile, spawn } from 'child_process';
import * as http from 'http';
import * as path from 'path';
import type { FdReport } from '../../checkpoint';
import { restoreProcess } from '../../checkpoint';
import { FifoReader } from './files/harness';
import { isAlive, makeTempDir, readFileOrUndefined, trackPid, waitFor } from './procs';
import { CLEAN_EXEC } from './namespaces';

export interface Server {
  name: string;
  pid: number;
  port: number;
  workdir: string;
  /** What the reader outside the tree got on the old stdout/stderr pipe. */
  before: () => string;
}

const quote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;

/** Starts `argv` (its last argument is given the workdir) with its stdout/stderr on a pipe read outside its tree. */
export async function startServer(name: string, argv: string[], timeoutMs = 30_000): Promise<Server> {
  const workdir = makeTempDir(name);
  const log = path.join(workdir, 'before.log');
  const cmd = [...CLEAN_EXEC, ...argv, workdir].map(quote).join(' ');
  const sh = spawn('setsid', ['-f', 'sh', '-c', `exec ${cmd} 2>&1 | cat > ${quote(log)}`], { stdio: 'ignore', cwd: '/' });
  await new Promise((resolve) => sh.on('exit', resolve));
  const pid = Number(await waitFor(() => readFileOrUndefined(path.join(workdir, 'ready')), timeoutMs, `${name} to write ready`));
  trackPid(pid);
  if (!isAlive(pid)) throw new Error(`${name} (pid ${pid}) died right after it was ready: ${readFileOrUndefined(log) ?? ''}`);
  const port = Number(readFileOrUndefined(path.join(workdir, 'port')) ?? 0);  // 0: not a server
  return { name, pid, port, workdir, before: () => readFileOrUndefined(log) ?? '' };
}

/** GET http://127.0.0.1:<port><urlPath> on a fresh connection; the body, trimmed. */
export function httpGet(port: number, urlPath = '/', timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`GET ${urlPath}: HTTP ${res.statusCode}: ${body}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} on port ${port}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * A client that keeps asking, one request after the other, until stopped: every answer with the time it
 * came, and the first failure (a server that stopped answering during a --leave-running dump).
 */
export class Poller<T> {
  readonly answers: Array<{ at: number; value: T }> = [];
  error: Error | undefined;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(ask: () => Promise<T>) {
    this.done = (async () => {
      while (!this.stopped) {
        try {
          this.answers.push({ value: await ask(), at: Date.now() });
        } catch (e) {
          this.error = e as Error;
          return;
        }
      }
    })();
  }

  /** Answers that came in [from, to). */
  between(from: number, to: number): T[] {
    return this.answers.filter((a) => a.at >= from && a.at < to).map((a) => a.value);
  }

  /** Waits until `n` more answers came than now (or the client failed). */
  async more(n: number, what: string): Promise<void> {
    const want = this.answers.length + n;
    await waitFor(() => this.answers.length >= want || this.error !== undefined, 20_000, what);
    if (this.error) throw new Error(`${what}: the client failed`, { cause: this.error });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    if (this.error) throw new Error('the client stopped getting answers', { cause: this.error });
  }
}

/** Restores `images` with its stdout and stderr on a new FIFO the test reads; the pid is tracked. */
export async function restoreOnNewPipes(images: string, workdir: string): Promise<{ pid: number; out: FifoReader }> {
  const out = new FifoReader(path.join(workdir, `after-${path.basename(images)}`));
  try {
    const r = await restoreProcess({ dir: images, inheritFds: [{ fd: 1, path: out.path }, { fd: 2, path: out.path }] });
    trackPid(r.pid);
    return { pid: r.pid, out };
  } catch (e) {
    out.close();
    throw e;
  }
}

const CLI = path.resolve(__dirname, '../../bin/cryopod.js');

/** `cryopod dump --check --pid <pid>` (table and --json): its exit code, its table, its reports. */
export async function cliCheck(pid: number): Promise<{ code: number; table: string; reports: FdReport[] }> {
  const run = (json: boolean): Promise<{ code: number; text: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [CLI, 'dump', '--check', '--pid', String(pid), ...(json ? ['--json'] : [])], (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, text: stdout + stderr });
      });
    });
  const table = await run(false);
  const json = await run(true);
  return { code: table.code, table: table.text, reports: JSON.parse(json.text) as FdReport[] };
}

/**
 * The verdict of every fd, for toEqual: "<fd> <kind> <verdict>" for stdio, then "<kind> <verdict>" for the
 * others, sorted (a runtime's own fds get numbers in whatever order it opens them).
 */
export function verdicts(reports: FdReport[]): string[] {
  const stdio = reports.filter((r) => r.fd <= 2).sort((a, b) => a.fd - b.fd).map((r) => `${r.fd} ${r.kind} ${r.verdict}`);
  return [...stdio, ...reports.filter((r) => r.fd > 2).map((r) => `${r.kind} ${r.verdict}`).sort()];
}
