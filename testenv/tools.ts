/**
 * The binaries the control plane needs, installed by scripts/kube/install.sh into the cache outside the
 * repo. Tests call ensureTools() instead of assuming a prepared machine, so a fresh CI machine works;
 * with a warm cache the script only checks a few files.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Tools {
  binDir: string;
  kubeApiserver: string;
  etcd: string;
  kubectl: string;
  helm: string;
}

/** Same default as install.sh. */
export function cacheDir(): string {
  return process.env.CRYOPOD_CACHE || path.join(os.homedir(), '.cache', 'cryopod');
}

/** The repo root, found upward from here: this file runs from testenv/ under ts-jest and dist/testenv/ under tsc. */
function installScript(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const script = path.join(dir, 'scripts', 'kube', 'install.sh');
    if (existsSync(script)) return script;
    if (path.dirname(dir) === dir) throw new Error(`scripts/kube/install.sh not found above ${__dirname}`);
  }
}

let installing: Promise<Tools> | undefined;

/**
 * Runs install.sh once per process. A cold cache builds the Kubernetes servers (one binary, kube-apiserver
 * among them) from source, which takes minutes:
 * give the first caller's hook a long timeout (or run the script before the tests, as CI should).
 */
export function ensureTools(): Promise<Tools> {
  installing ??= new Promise<Tools>((resolve, reject) => {
    execFile('bash', [installScript()], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        installing = undefined; // let a later call retry, e.g. after the machine was fixed
        reject(new Error(`scripts/kube/install.sh failed:\n${stdout}${stderr}`));
        return;
      }
      const binDir = path.join(cacheDir(), 'bin');
      resolve({
        binDir,
        kubeApiserver: path.join(binDir, 'kube-apiserver'),
        etcd: path.join(binDir, 'etcd'),
        kubectl: path.join(binDir, 'kubectl'),
        helm: path.join(binDir, 'helm'),
      });
    });
  });
  return installing;
}
