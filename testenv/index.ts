/**
 * A private Kubernetes control plane (etcd + kube-apiserver, real certificates, RBAC on) for one test run:
 *
 *   const cp = await startControlPlane();
 *   const kubeconfig = await cp.kubeconfigFor('system:serviceaccount:cryopod-system:cryopod-operator',
 *                                              ['system:serviceaccounts', 'system:serviceaccounts:cryopod-system']);
 *   ...
 *   await cp.stop();
 *
 * kubeconfigFor signs a client certificate for any user and groups, so the operator and the agent can run
 * as their real ServiceAccount identities and be held to exactly the RBAC rules the Helm chart installs.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startApiServer } from './apiserver';
import { createCA, createServiceAccountKeys, signCert, type KeyPair } from './certs';
import { startEtcd } from './etcd';
import { writeKubeconfig } from './kubeconfig';
import { ensureTools } from './tools';

export { apiRequest, type ApiResponse } from './client';
export { ensureTools, type Tools } from './tools';
export { holdsFor, waitFor } from './wait';
export { bucketOf, promtoolCheckMetrics, sampleNames, startPrometheus, type Prometheus, type Sample, type ScrapeTargets } from './prometheus';

export interface ControlPlane {
  /** The admin kubeconfig (user "cryopod-admin", group system:masters); same file as adminKubeconfig. */
  kubeconfigPath: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** The CA that signed the serving certificate and every client certificate. */
  caPath: string;
  adminKubeconfig: string;
  /** Where the certificates, kubeconfigs, etcd data and both logs (etcd.log, kube-apiserver.log) are. */
  dataDir: string;
  pids: { etcd: number; apiserver: number };
  /** Stops both servers and removes the data dir if this fixture made it. Safe to call twice. */
  stop(): Promise<void>;
  /** Writes a kubeconfig whose client certificate names this user (CN) and groups (O) and returns its path. */
  kubeconfigFor(user: string, groups?: string[]): Promise<string>;
  /**
   * Stops kube-apiserver (SIGTERM; etcd and its data stay), awaits `whileDown`, and starts it again on the
   * same port, ready (/readyz): what clients see of an API server restart or upgrade.
   */
  restartApiServer(whileDown?: () => Promise<void>): Promise<void>;
}

export interface ControlPlaneOptions {
  /**
   * Where to keep everything. Default: a new temp dir, removed by stop(). A dir given here is kept
   * (logs and all); so is the temp dir when CRYOPOD_KEEP_TESTENV=1, for debugging a failed test.
   */
  dataDir?: string;
}

export const ADMIN_USER = 'cryopod-admin';

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const tools = await ensureTools();
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'cryopod-cp-')));
  const pki = path.join(dataDir, 'pki');
  await fs.mkdir(pki, { recursive: true, mode: 0o700 });

  const ca = await createCA(pki, 'ca');
  const [serving, admin, sa] = await Promise.all([
    signCert(ca, pki, { name: 'apiserver', commonName: 'kube-apiserver', usage: 'server', ipSANs: ['127.0.0.1'], dnsSANs: ['localhost'] }),
    signCert(ca, pki, { name: 'admin', commonName: ADMIN_USER, organizations: ['system:masters'], usage: 'client' }),
    createServiceAccountKeys(pki),
  ]);

  const stops: Array<() => Promise<void>> = [];
  const cleanup = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) await stop();
    if (ownDir && process.env.CRYOPOD_KEEP_TESTENV !== '1') await fs.rm(dataDir, { recursive: true, force: true });
  };

  try {
    const etcd = await startEtcd(tools.etcd, dataDir);
    stops.push(() => etcd.process.stop());
    const apiFiles = {
      caPath: ca.certPath,
      servingCertPath: serving.certPath,
      servingKeyPath: serving.keyPath,
      saPublicKeyPath: sa.publicKeyPath,
      saPrivateKeyPath: sa.privateKeyPath,
      adminCertPath: admin.certPath,
      adminKeyPath: admin.keyPath,
    };
    let api = await startApiServer(tools.kubeApiserver, dataDir, etcd.endpoint, apiFiles);
    // The API server first, so it never logs etcd errors while shutting down.
    stops.push(() => api.process.stop());
    const restartApiServer = async (whileDown?: () => Promise<void>): Promise<void> => {
      await api.process.stop();
      if (whileDown) await whileDown();
      api = await startApiServer(tools.kubeApiserver, dataDir, etcd.endpoint, apiFiles, 60000, Number(new URL(api.server).port));
      pids.apiserver = api.process.pid;
    };
    const pids = { etcd: etcd.process.pid, apiserver: api.process.pid };

    const adminKubeconfig = path.join(dataDir, 'admin.kubeconfig');
    await writeKubeconfig(adminKubeconfig, api.server, ca.certPath, { user: ADMIN_USER, ...admin });

    let users = 0;
    const kubeconfigFor = async (user: string, groups: string[] = []): Promise<string> => {
      const name = `user-${++users}`;
      const pair: KeyPair = await signCert(ca, pki, { name, commonName: user, organizations: groups, usage: 'client' });
      const file = path.join(dataDir, `${name}.kubeconfig`);
      await writeKubeconfig(file, api.server, ca.certPath, { user, ...pair });
      return file;
    };

    let stopped: Promise<void> | undefined;
    return {
      kubeconfigPath: adminKubeconfig,
      adminKubeconfig,
      server: api.server,
      caPath: ca.certPath,
      dataDir,
      pids, // the API server's is the current one after a restart
      stop: () => (stopped ??= cleanup()),
      kubeconfigFor,
      restartApiServer,
    };
  } catch (err) {
    await cleanup();
    if (ownDir && process.env.CRYOPOD_KEEP_TESTENV !== '1' && err instanceof Error) {
      err.message += `\n(${dataDir} was removed; CRYOPOD_KEEP_TESTENV=1 keeps it for a look at the logs)`;
    }
    throw err;
  }
}
