/**
 * Certificates for the test control plane, made with the openssl CLI (present on every Debian machine), so
 * the API server authenticates real X.509 client certificates exactly as in a cluster: the CN is the user
 * name and each O is a group (system:masters for the admin).
 * P-256 keys: as valid as RSA for every use here, and generated in milliseconds.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface KeyPair {
  certPath: string;
  keyPath: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** openssl -subj syntax: "/" and "\" inside a value must be escaped. */
function subject(cn: string, orgs: string[]): string {
  const esc = (v: string) => v.replace(/[\\/]/g, (c) => `\\${c}`);
  return orgs.map((o) => `/O=${esc(o)}`).join('') + `/CN=${esc(cn)}`;
}

/** A self-signed CA, valid for two days: long enough for any test run, useless after. */
export async function createCA(dir: string, name: string): Promise<KeyPair> {
  const pair = { certPath: path.join(dir, `${name}.crt`), keyPath: path.join(dir, `${name}.key`) };
  await openssl(
    ['req', '-x509', ...newKey, '-keyout', pair.keyPath, '-out', pair.certPath, '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  return pair;
}

export interface CertRequest {
  /** File name stem in dir (the caller keeps it unique). */
  name: string;
  commonName: string;
  organizations?: string[];
  /** 'server' certificates get subjectAltNames for loopback; 'client' ones are for authentication. */
  usage: 'server' | 'client';
  ipSANs?: string[];
  dnsSANs?: string[];
}

/** A key and a certificate signed by ca. */
export async function signCert(ca: KeyPair, dir: string, req: CertRequest): Promise<KeyPair> {
  if (!req.commonName) throw new Error('a certificate needs a common name (the user name)');
  const stem = path.join(dir, req.name);
  const pair = { certPath: `${stem}.crt`, keyPath: `${stem}.key` };
  const ext = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${req.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
  ];
  const sans = [...(req.ipSANs ?? []).map((ip) => `IP:${ip}`), ...(req.dnsSANs ?? []).map((d) => `DNS:${d}`)];
  if (sans.length) ext.push(`subjectAltName=${sans.join(',')}`);
  await fs.writeFile(`${stem}.ext`, ext.join('\n') + '\n');
  await openssl(
    ['req', '-new', ...newKey, '-keyout', pair.keyPath, '-out', `${stem}.csr`, '-utf8',
      '-subj', subject(req.commonName, req.organizations ?? [])],
    dir,
  );
  await openssl(
    // A random serial (not -CAcreateserial's shared counter file), so certificates can be signed in parallel.
    ['x509', '-req', '-in', `${stem}.csr`, '-CA', ca.certPath, '-CAkey', ca.keyPath,
      '-set_serial', `0x${randomBytes(8).toString('hex')}`,
      '-out', pair.certPath, '-days', '2', '-extfile', `${stem}.ext`],
    dir,
  );
  return pair;
}

/**
 * The key pair the API server signs service-account tokens with (private) and verifies them with
 * (public), as --service-account-signing-key-file and --service-account-key-file.
 */
export async function createServiceAccountKeys(dir: string): Promise<{ privateKeyPath: string; publicKeyPath: string }> {
  const privateKeyPath = path.join(dir, 'sa.key');
  const publicKeyPath = path.join(dir, 'sa.pub');
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', privateKeyPath], dir);
  await openssl(['pkey', '-in', privateKeyPath, '-pubout', '-out', publicKeyPath], dir);
  return { privateKeyPath, publicKeyPath };
}
