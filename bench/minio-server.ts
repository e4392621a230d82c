/**
 * A real MinIO server on a free loopback port, for the S3 bench and the store tests (store/test/minio.ts
 * re-exports it): built by scripts/s3/install-minio.sh into the cache (run once per process, a stat()
 * when warm), started with its own data directory and root credentials, killed and started again on the
 * same port and data (as a crash would), stopped. The child gets PR_SET_PDEATHSIG (util-linux setpriv),
 * so it dies with the process that started it, however that ends.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, promises as fsp, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { S3Options } from '../store/image-store';

export interface Minio {
  endpoint: string;
  /** Credentials and endpoint as the store takes them. */
  s3: S3Options;
  dataDir: string;
  /** SIGKILLs the server (a crash): requests fail until start(). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

function script(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const s = path.join(dir, 'scripts', 's3', 'install-minio.sh');
    if (existsSync(s)) return s;
    if (path.dirname(dir) === dir) throw new Error(`scripts/s3/install-minio.sh not found above ${__dirname}`);
  }
}

let installing: Promise<string> | undefined;
export function ensureMinio(): Promise<string> {
  installing ??= new Promise((resolve, reject) =>
    execFile('bash', [script()], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        installing = undefined;
        reject(new Error(`scripts/s3/install-minio.sh failed:\n${stdout}${stderr}`));
      } else resolve(path.join(process.env.CRYOPOD_CACHE || path.join(os.homedir(), '.cache', 'cryopod'), 'bin', 'minio'));
    }),
  );
  return installing;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen({ host: '127.0.0.1', port: 0 }, resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

function ready(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/minio/health/ready', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/** `dataParent`: where its data directory goes (default the temp dir; the bench uses /dev/shm). */
export async function startMinio(opts: { dataParent?: string } = {}): Promise<Minio> {
  const binary = await ensureMinio();
  const dataDir = await fsp.mkdtemp(path.join(opts.dataParent ?? os.tmpdir(), 'cryopod-minio-'));
  const [port, consolePort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${port}`;
  const s3: S3Options = { endpoint, region: 'us-east-1', accessKeyId: 'cryopod-test', secretAccessKey: 'cryopod-test-secret-key', forcePathStyle: true };
  const logPath = path.join(dataDir, 'minio.log');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const start = async (): Promise<void> => {
    const log = openSync(logPath, 'a');
    const args = ['server', '--quiet', '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, path.join(dataDir, 'data')];
    // Root credentials through the environment, as MinIO reads them; no update checks, no web console.
    const env = { ...process.env, MINIO_ROOT_USER: s3.accessKeyId, MINIO_ROOT_PASSWORD: s3.secretAccessKey, MINIO_UPDATE: 'off', MINIO_BROWSER: 'off' };
    child = existsSync('/usr/bin/setpriv') ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', binary, ...args], { stdio: ['ignore', log, log], env }) : spawn(binary, args, { stdio: ['ignore', log, log], env });
    closeSync(log);
    child.unref();
    const c = child;
    let gone = false;
    exited = new Promise((resolve) => c.once('exit', () => ((gone = true), resolve())));
    const deadline = Date.now() + 60_000;
    while (!(await ready(port))) {
      if (gone || Date.now() > deadline) throw new Error(`minio did not become ready on ${endpoint}; log ${logPath}:\n${readFileSync(logPath, 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await start();
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId!, secretAccessKey: s3.secretAccessKey! } });
  const kill = async (): Promise<void> => {
    child?.kill('SIGKILL');
    await exited;
  };
  return {
    endpoint,
    s3,
    dataDir,
    kill,
    start,
    createBucket: async (name) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    stop: async () => {
      client.destroy();
      child?.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      await fsp.rm(dataDir, { recursive: true, force: true });
    },
  };
}
