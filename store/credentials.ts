/**
 * Where a store's secrets come from: never a CR. In the cluster, a Kubernetes Secret mounted as files
 * (one file per key, as the kubelet writes them); in the CLI, environment variables naming values or
 * files. Both give the same StoreOptions plus the seal keys (images/seal.ts).
 *
 *   Secret key / file       environment (CLI)            what
 *   s3-access-key-id        AWS_ACCESS_KEY_ID            S3 credentials
 *   s3-secret-access-key    AWS_SECRET_ACCESS_KEY
 *   s3-session-token        AWS_SESSION_TOKEN            (optional)
 *   s3-endpoint             CRYOPOD_S3_ENDPOINT          an S3-compatible server (unset: AWS)
 *   s3-region               AWS_REGION                   (default us-east-1)
 *   encryption-keys.json    CRYOPOD_ENCRYPTION_KEYS      path: {"current": "k1", "keys": {"k1": "<base64 of 32 bytes>"}}
 *   signing-key.pem         CRYOPOD_SIGNING_KEY          path: Ed25519 private key (the side that dumps)
 *   trusted-keys.pem        CRYOPOD_TRUSTED_KEYS         path: Ed25519 public key(s), PEM, concatenated
 */
import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { signingKey, verifyingKey } from '../images/seal';
import { keyRingFrom } from './cipher';
import type { StoreOptions } from './image-store';

export interface StoreSecrets {
  options: StoreOptions;
  signingKey?: KeyObject;
  trustedKeys: KeyObject[];
}

function parsePemList(text: string): KeyObject[] {
  const blocks = text.match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g) ?? [];
  return blocks.map((b) => verifyingKey(b));
}

function build(get: (name: string) => string | undefined, read: (name: string) => string | undefined): StoreSecrets {
  const keys = read('encryption-keys.json');
  const signing = read('signing-key.pem');
  const trusted = read('trusted-keys.pem');
  const signer = signing ? signingKey(signing) : undefined;
  return {
    options: {
      s3: {
        accessKeyId: get('s3-access-key-id'),
        secretAccessKey: get('s3-secret-access-key'),
        sessionToken: get('s3-session-token'),
        endpoint: get('s3-endpoint'),
        region: get('s3-region'),
      },
      ...(keys ? { keys: keyRingFrom(JSON.parse(keys)) } : {}),
    },
    signingKey: signer,
    // The signer's own public half is trusted too: an agent restores what it (or its peers) dumped.
    trustedKeys: [...(trusted ? parsePemList(trusted) : []), ...(signer ? [verifyingKey(signing!)] : [])],
  };
}

/** From a mounted Secret: every file optional. */
export function storeSecretsFromDir(dir: string | undefined): StoreSecrets {
  const read = (name: string): string | undefined => {
    if (!dir) return undefined;
    const file = path.join(dir, name);
    return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  };
  return build((n) => read(n)?.trim() || undefined, read);
}

const ENV: Record<string, string> = {
  's3-access-key-id': 'AWS_ACCESS_KEY_ID',
  's3-secret-access-key': 'AWS_SECRET_ACCESS_KEY',
  's3-session-token': 'AWS_SESSION_TOKEN',
  's3-endpoint': 'CRYOPOD_S3_ENDPOINT',
  's3-region': 'AWS_REGION',
  'encryption-keys.json': 'CRYOPOD_ENCRYPTION_KEYS',
  'signing-key.pem': 'CRYOPOD_SIGNING_KEY',
  'trusted-keys.pem': 'CRYOPOD_TRUSTED_KEYS',
};

/** From the environment (the CLI): values for S3, paths for the key files. */
export function storeSecretsFromEnv(env: NodeJS.ProcessEnv = process.env): StoreSecrets {
  const get = (name: string): string | undefined => env[ENV[name]] || undefined;
  return build(get, (name) => {
    const file = get(name);
    return file ? readFileSync(file, 'utf8') : undefined;
  });
}
