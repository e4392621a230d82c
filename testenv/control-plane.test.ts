/**
 * Proves the integration-test fixture: a real kube-apiserver + etcd with certificates and RBAC, driven by
 * kubectl as admin, refusing an unknown user with the server's own 403, and leaving no process behind.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createCA, signCert } from './certs';
import { tlsRequest } from './client';
import { ADMIN_USER, apiRequest, ensureTools, startControlPlane, type ControlPlane, type Tools } from './index';

const run = promisify(execFile);

/** True while a process with this pid exists (zombies included, which a leaked child would be too). */
function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** Every process whose command line mentions dir: catches children the fixture lost track of. */
function processesMentioning(dir: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false; // exited meanwhile
      }
    })
    .map(Number);
}

/**
 * Node code for a child process that starts a control plane through testenv (transpiled on the fly with
 * the repo's typescript), prints its pids and data dir, then ends as told: 'exit' calls process.exit
 * without stop(), as a crashing test runner would; 'hang' waits to be SIGKILLed, when no hook can run.
 */
const holder = (mode: 'exit' | 'hang'): string => `
  const fs = require('node:fs'), ts = require('typescript');
  require.extensions['.ts'] = (m, file) => m._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'),
    { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, file);
  require(${JSON.stringify(require.resolve('./index.ts'))}).startControlPlane().then((cp) => {
    fs.writeSync(1, JSON.stringify({ pids: cp.pids, dataDir: cp.dataDir }) + '\\n');
    if (${JSON.stringify(mode)} === 'exit') process.exit(1);
    setInterval(() => {}, 1000);
  }, (err) => { console.error(err); process.exit(2); });
`;

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return pids.filter(alive);
}

describe('test control plane (real kube-apiserver + etcd)', () => {
  let tools: Tools;
  let cp: ControlPlane | undefined;

  // A cold cache builds kube-apiserver from the Go module first: minutes, once per machine.
  beforeAll(async () => {
    tools = await ensureTools();
  }, 45 * 60 * 1000);

  afterAll(async () => {
    await cp?.stop();
  });

  const kubectl = async (kubeconfig: string, ...args: string[]): Promise<string> =>
    (await run(tools.kubectl, ['--kubeconfig', kubeconfig, ...args])).stdout;

  it('serves admin over TLS, enforces RBAC, and stops without leftovers', async () => {
    const started = Date.now();
    cp = await startControlPlane();
    const startMs = Date.now() - started;
    expect(cp.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(alive(cp.pids.etcd) && alive(cp.pids.apiserver)).toBe(true);

    // Admin (system:masters) through the real kubectl: create and read back.
    await kubectl(cp.adminKubeconfig, 'create', 'namespace', 'cp-test');
    await kubectl(cp.adminKubeconfig, '-n', 'cp-test', 'create', 'configmap', 'greeting', '--from-literal=hello=world');
    const cm = JSON.parse(await kubectl(cp.adminKubeconfig, '-n', 'cp-test', 'get', 'configmap', 'greeting', '-o', 'json'));
    expect(cm.data).toEqual({ hello: 'world' });
    expect(await kubectl(cp.adminKubeconfig, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.groups}')).toContain('system:masters');

    // A pod can be created with no controller-manager running (no default ServiceAccount needed).
    await kubectl(cp.adminKubeconfig, '-n', 'cp-test', 'run', 'p', '--image=example.invalid/none', '--restart=Never');

    // alice authenticates (her certificate is valid) but has no RBAC binding: the real server says 403.
    const alice = await cp.kubeconfigFor('alice', ['team-a']);
    const res = await apiRequest(alice, 'GET', '/api/v1/namespaces/cp-test/pods');
    expect(res.status).toBe(403);
    expect(res.body.reason).toBe('Forbidden');
    expect(res.body.message).toContain('User "alice" cannot list resource "pods"');
    await expect(kubectl(alice, '-n', 'cp-test', 'get', 'pods')).rejects.toThrow(/forbidden/i);

    // A ServiceAccount identity (as the operator and agent run) is held to exactly its RoleBinding.
    await kubectl(cp.adminKubeconfig, '-n', 'cp-test', 'create', 'role', 'pod-reader', '--verb=list', '--resource=pods');
    await kubectl(cp.adminKubeconfig, '-n', 'cp-test', 'create', 'rolebinding', 'pod-reader', '--role=pod-reader', '--serviceaccount=cp-test:reader');
    const reader = await cp.kubeconfigFor('system:serviceaccount:cp-test:reader', ['system:serviceaccounts', 'system:serviceaccounts:cp-test']);
    expect((await apiRequest(reader, 'GET', '/api/v1/namespaces/cp-test/pods')).status).toBe(200);
    expect((await apiRequest(reader, 'GET', '/api/v1/namespaces/default/pods')).status).toBe(403);
    expect((await apiRequest(reader, 'GET', '/api/v1/namespaces/cp-test/secrets')).status).toBe(403);

    // The server knows her from the certificate alone: CN is the user, each O a group.
    const review = await apiRequest(alice, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'SelfSubjectReview',
    });
    expect(review.status).toBe(201);
    expect(review.body.status.userInfo.username).toBe('alice');
    expect(review.body.status.userInfo.groups).toEqual(expect.arrayContaining(['team-a', 'system:authenticated']));

    // A certificate from another CA proves nothing: 401, not 403.
    const rogueCA = await createCA(cp.dataDir, 'rogue-ca');
    const mallory = await signCert(rogueCA, cp.dataDir, { name: 'mallory', commonName: ADMIN_USER, organizations: ['system:masters'], usage: 'client' });
    const [ca, cert, key] = [cp.caPath, mallory.certPath, mallory.keyPath].map((f) => readFileSync(f));
    expect((await tlsRequest({ server: cp.server, ca, cert, key }, 'GET', '/api/v1/namespaces')).status).toBe(401);

    const { pids, dataDir } = cp;
    await cp.stop();
    expect(alive(pids.etcd)).toBe(false);
    expect(alive(pids.apiserver)).toBe(false);
    expect(processesMentioning(dataDir)).toEqual([]);
    if (process.env.CRYOPOD_KEEP_TESTENV !== '1') expect(existsSync(dataDir)).toBe(false);
    cp = undefined;
    console.log(`control plane ready in ${startMs} ms`);
  });

  // No etcd or kube-apiserver survives the process that started it, however that process ends.
  it.each(['exit', 'hang'] as const)('leaves no server behind when its runner dies (%s)', async (mode) => {
    const child = spawn(process.execPath, ['-e', holder(mode)], { cwd: path.resolve(__dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]);
      });
      // 'close', not 'exit': it comes after the last stdout data, so a quick exit cannot hide the line.
      child.once('close', (code) => reject(new Error(`holder exited (${code}) before the control plane was up: ${out}`)));
    });
    const { pids, dataDir } = JSON.parse(line) as { pids: { etcd: number; apiserver: number }; dataDir: string };
    try {
      if (mode === 'hang') {
        expect(alive(pids.etcd) && alive(pids.apiserver)).toBe(true);
        child.kill('SIGKILL'); // no 'exit' hook can run: only PDEATHSIG is left
      }
      expect(await waitGone([pids.etcd, pids.apiserver], 10000)).toEqual([]);
      expect(processesMentioning(dataDir)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true }); // the holder never got to clean up
    }
  });
});
