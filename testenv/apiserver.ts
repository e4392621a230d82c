/**
 * kube-apiserver on a free loopback port, with the security a real cluster has: TLS with our CA, X.509
 * client-certificate authentication, Node+RBAC authorization, and service-account token signing.
 * It runs no controllers, so nothing else is started: no controller-manager, scheduler or kubelet.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { tlsRequest } from './client';
import { freePorts } from './ports';
import { startServer, waitUntil, type ServerProcess } from './process';

export interface ApiServerFiles {
  caPath: string;
  servingCertPath: string;
  servingKeyPath: string;
  saPublicKeyPath: string;
  saPrivateKeyPath: string;
  /** A system:masters client certificate, used only to poll /readyz. */
  adminCertPath: string;
  adminKeyPath: string;
}

export interface ApiServer {
  /** https://127.0.0.1:PORT */
  server: string;
  process: ServerProcess;
}

export async function startApiServer(
  binary: string,
  dir: string,
  etcdEndpoint: string,
  files: ApiServerFiles,
  timeoutMs = 60000,
  /** A port to bind again (a restart, which clients must find at the same URL); default: a free one. */
  samePort?: number,
): Promise<ApiServer> {
  const port = samePort ?? (await freePorts(1))[0];
  const server = `https://127.0.0.1:${port}`;
  const args = [
    `--etcd-servers=${etcdEndpoint}`,
    '--bind-address=127.0.0.1',
    // The address written into the `kubernetes` Service; without it the server picks a host interface.
    '--advertise-address=127.0.0.1',
    `--secure-port=${port}`,
    `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
    `--tls-cert-file=${files.servingCertPath}`,
    `--tls-private-key-file=${files.servingKeyPath}`,
    `--client-ca-file=${files.caPath}`,
    '--authorization-mode=Node,RBAC',
    `--service-account-issuer=${server}`,
    `--service-account-key-file=${files.saPublicKeyPath}`,
    `--service-account-signing-key-file=${files.saPrivateKeyPath}`,
    // Only a configuration value (ClusterIPs are allocated from it); nothing sends traffic there.
    '--service-cluster-ip-range=10.0.0.0/24',
    // The ServiceAccount admission plugin rejects every pod whose namespace lacks the `default`
    // ServiceAccount, which only kube-controller-manager creates, and we run none. Everything else in
    // the default admission chain (NamespaceLifecycle, PodSecurity, ValidatingAdmissionPolicy ...) stays.
    '--disable-admission-plugins=ServiceAccount',
    // The agent's DaemonSet and restored pods may be privileged, as in a real cluster (kubeadm's default).
    '--allow-privileged=true',
    // The endpoints reconciler would publish 127.0.0.1 as the `kubernetes` Service's endpoint, which
    // endpoint validation rejects (loopback), and log that every 10 s; nothing here needs the endpoint.
    '--endpoint-reconciler-type=none',
    '--profiling=false',
  ];
  await fs.mkdir(path.join(dir, 'apiserver-certs'), { recursive: true });
  const [ca, cert, key] = await Promise.all(
    [files.caPath, files.adminCertPath, files.adminKeyPath].map((f) => fs.readFile(f)),
  );
  const proc = startServer('kube-apiserver', binary, args, path.join(dir, 'kube-apiserver.log'));
  // /readyz turns ok once etcd is reachable and every post-start hook (RBAC bootstrap roles, priority
  // classes, the default namespaces ...) has run: only then are RBAC answers final.
  const ready = async (): Promise<boolean> => (await tlsRequest({ server, ca, cert, key }, 'GET', '/readyz', undefined, 5000)).status === 200;
  try {
    await waitUntil(proc, 'ready (/readyz)', ready, timeoutMs);
  } catch (err) {
    await proc.stop(0);
    throw err;
  }
  return { server, process: proc };
}
