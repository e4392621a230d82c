/**
 * The operator as the Deployment runs it: `node operator/main.js --flags`, compiled by tsc (only main.ts and
 * what it imports), as a child process with the operator's identity. Checks that it reconciles, serves
 * /metrics and /healthz, and stops gracefully on SIGTERM (exit 0), and that bad flags stop it at start.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createCheckpoint, getCheckpoint, setup, waitFor, type Env } from './test-fixture';

const run = promisify(execFile);
const REPO = path.join(__dirname, '..', '..');
let env: Env;
let outDir: string;
let child: ChildProcess | undefined;

beforeAll(async () => {
  outDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cryopod-operator-build-'));
  const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  const flags = ['--outDir', outDir, '--rootDir', REPO, '--target', 'ES2022', '--module', 'commonjs', '--moduleResolution', 'node', '--strict', '--esModuleInterop', '--skipLibCheck', '--types', 'node'];
  [env] = await Promise.all([setup(), run(process.execPath, [tsc, ...flags, path.join(REPO, 'operator', 'main.ts')])]);
  await fs.symlink(path.join(REPO, 'node_modules'), path.join(outDir, 'node_modules'));
}, 180000);
afterAll(async () => {
  child?.kill('SIGKILL');
  await env?.stop();
  if (outDir) await fs.rm(outDir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

test('bad flags stop it at start with a clear message', async () => {
  const r = await run(process.execPath, [path.join(outDir, 'operator', 'main.js'), '--keep-last=-3']).catch((e) => e);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/cryopod-operator: --keep-last: "-3" is not a non-negative integer/);
});

test('runs, reconciles, serves /metrics and /healthz, and exits 0 on SIGTERM', async () => {
  const port = await freePort();
  let output = '';
  child = spawn(process.execPath, [path.join(outDir, 'operator', 'main.js'), `--storage-root=${env.storageRoot}`, `--metrics-port=${port}`, '--agent-claim-timeout=2'], {
    env: { ...process.env, KUBECONFIG: env.operatorKubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  await createCheckpoint(env.admin, 'default', 'orphan', { podName: 'nobody' });
  const ck = await waitFor('PodNotFound', async () => {
    const c = await getCheckpoint(env.admin, 'default', 'orphan');
    return c.status?.phase === 'Failed' && c;
  });
  expect(ck.status!.conditions!.find((c) => c.type === 'Ready')!.reason).toBe('PodNotFound');

  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  expect(health.status).toBe(200);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect(metrics).toMatch(/cryopod_checkpoints_total\{result="failed"\} 1/);
  expect(metrics).toMatch(/cryopod_reconcile_duration_seconds_count\{kind="checkpoint",outcome="ok"\} \d+/);
  expect(metrics).toMatch(/cryopod_workqueue_depth\{kind="checkpoint"\} 0/);

  const exited = new Promise<number | null>((r) => child!.on('exit', (code) => r(code)));
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(output).toMatch(/SIGTERM: stopping/);
  child = undefined;
});
