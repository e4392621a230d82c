/**
 * Kubeconfig files for the test control plane. They point at certificate files by absolute path (no
 * embedded base64), so a failing test's data dir can be inspected with openssl and reused with kubectl.
 * JSON is valid YAML, so kubectl, helm and any client library read them as they are.
 */
import { promises as fs } from 'node:fs';

export interface KubeconfigUser {
  /** The user's name as the API server sees it (the certificate's CN). */
  user: string;
  certPath: string;
  keyPath: string;
}

export interface Kubeconfig {
  server: string;
  caPath: string;
  certPath: string;
  keyPath: string;
  user: string;
}

const CONTEXT = 'cryopod-test';

export async function writeKubeconfig(file: string, server: string, caPath: string, u: KubeconfigUser): Promise<void> {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: CONTEXT, cluster: { server, 'certificate-authority': caPath } }],
    users: [{ name: u.user, user: { 'client-certificate': u.certPath, 'client-key': u.keyPath } }],
    contexts: [{ name: CONTEXT, context: { cluster: CONTEXT, user: u.user, namespace: 'default' } }],
    'current-context': CONTEXT,
  };
  // 0600: it names a private key, as kubectl's own files do.
  await fs.writeFile(file, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}

/** Reads back a kubeconfig written by writeKubeconfig (only that shape: one cluster, one user). */
export async function readKubeconfig(file: string): Promise<Kubeconfig> {
  const config = JSON.parse(await fs.readFile(file, 'utf8'));
  const cluster = config?.clusters?.[0]?.cluster;
  const user = config?.users?.[0];
  if (!cluster?.server || !user?.user?.['client-certificate']) {
    throw new Error(`${file} is not a kubeconfig written by testenv`);
  }
  return {
    server: cluster.server,
    caPath: cluster['certificate-authority'],
    certPath: user.user['client-certificate'],
    keyPath: user.user['client-key'],
    user: user.name,
  };
}
