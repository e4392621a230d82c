/**
 * A private single-member etcd on free loopback ports, data in a temp dir. Plain HTTP: it is reachable
 * only from this machine, and only the API server talks to it (as in kubeadm's stacked etcd, minus TLS).
 */
import * as http from 'node:http';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { freePorts } from './ports';
import { startServer, waitUntil, type ServerProcess } from './process';

export interface Etcd {
  /** For kube-apiserver --etcd-servers. */
  endpoint: string;
  process: ServerProcess;
}

function healthy(endpoint: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${endpoint}/health`, { timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export async function startEtcd(binary: string, dir: string, timeoutMs = 30000): Promise<Etcd> {
  const [clientPort, peerPort] = await freePorts(2);
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const dataDir = path.join(dir, 'etcd-data');
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const proc = startServer(
    'etcd',
    binary,
    [
      '--name=cryopod-test',
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=cryopod-test=${peer}`,
      '--initial-cluster-state=new',
      // Small snapshots and no metrics listener: a test etcd lives for seconds to minutes.
      '--snapshot-count=10000',
      '--logger=zap',
      '--log-level=warn',
    ],
    path.join(dir, 'etcd.log'),
  );
  try {
    await waitUntil(proc, 'healthy', () => healthy(endpoint), timeoutMs);
  } catch (err) {
    await proc.stop(0);
    throw err;
  }
  return { endpoint, process: proc };
}
