/**
 * A real MinIO server on a free loopback port, for the S3 tests and the bench: built by
 * scripts/s3/install-minio.sh into the cache (run here once per process, a stat() when warm), started
 * with its own data directory and root credentials, stopped (or killed and started again on the same
 * port and data, as a crash would) by the test.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from '../../testenv/ports';
import { startServer, waitUntil, type ServerProcess } from '../../testenv/process';
import { cacheDir } from '../../testenv/tools';
import type { S3Options } from '../image-store';

export interface Minio {
  endpoint: string;
  /** Credentials and endpoint as the store takes them. */
  s3: S3Options;
  dataDir: string;
  process(): ServerProcess;
  /** SIGKILLs the server (a crash): requests fail until start(). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

function repoScript(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const script = path.join(dir, 'scripts', 's3', 'install-minio.sh');
    if (existsSync(script)) return script;
    if (path.dirname(dir) === dir) throw new Error(`scripts/s3/install-minio.sh not found above ${__dirname}`);
  }
}

let installing: Promise<string> | undefined;
export function ensureMinio(): Promise<string> {
  installing ??= new Promise((resolve, reject) =>
    execFile('bash', [repoScript()], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        installing = undefined;
        reject(new Error(`scripts/s3/install-minio.sh failed:\n${stdout}${stderr}`));
      } else resolve(path.join(cacheDir(), 'bin', 'minio'));
    }),
  );
  return installing;
}

function live(port: number): Promise<boolean> {
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
  const [port, consolePort] = await freePorts(2);
  const endpoint = `http://127.0.0.1:${port}`;
  const s3: S3Options = { endpoint, region: 'us-east-1', accessKeyId: 'cryopod-test', secretAccessKey: 'cryopod-test-secret-key', forcePathStyle: true };
  let proc: ServerProcess | undefined;
  const start = async (): Promise<void> => {
    // Root credentials through the environment, as MinIO reads them; no update checks, no web console.
    const env = { MINIO_ROOT_USER: s3.accessKeyId, MINIO_ROOT_PASSWORD: s3.secretAccessKey, MINIO_UPDATE: 'off', MINIO_BROWSER: 'off' };
    proc = startServer('minio', '/usr/bin/env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), binary, 'server', '--quiet', '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, path.join(dataDir, 'data')], path.join(dataDir, 'minio.log'));
    await waitUntil(proc, 'ready', () => live(port), 60_000);
  };
  await start();
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId!, secretAccessKey: s3.secretAccessKey! } });
  return {
    endpoint,
    s3,
    dataDir,
    process: () => proc!,
    kill: async () => {
      process.kill(proc!.pid, 'SIGKILL');
      await proc!.exit;
    },
    start,
    createBucket: async (name) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    stop: async () => {
      client.destroy();
      await proc?.stop();
      await fsp.rm(dataDir, { recursive: true, force: true });
    },
  };
}
