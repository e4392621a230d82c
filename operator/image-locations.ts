/**
 * The operator's view of where images are: a Checkpoint's status.imageLocation is either a directory
 * of the shared root (file://, storage.ts as before) or a checkpoint in the configured image store
 * (--store-url: s3:// or another file:// root, through store/). Both are held to the same rule: only
 * a location inside the object's own namespace is touched, and a refusal is a StorageError.
 *
 * pod.json from the store is believed only after the seal's signature is checked and its sha256 and
 * size match the seal: the restore pod is built from it, so a rewritten pod.json must not reach the API.
 */
import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { SEAL_FILE } from '../images/seal';
import { checkSignature, parseSealText, SealError } from '../images/seal-verify';
import { openStore, storeSecretsFromDir, type ImageStore as Store } from '../store';
import { POD_FILE } from '../kube';
import { ImageStore, StorageError } from './storage';

export interface ImageLocations {
  remove(imageLocation: string, namespace: string): Promise<'removed' | 'absent'>;
  readPod(imageLocation: string, namespace: string): Promise<Record<string, unknown>>;
}

export interface RemoteImages {
  store: Store;
  trustedKeys: KeyObject[];
  allowUnsigned: boolean;
}

export function remoteImagesFrom(cfg: { storeUrl?: string; storeSecretDir?: string; allowUnsigned?: boolean }): RemoteImages | undefined {
  if (!cfg.storeUrl) return undefined;
  const secrets = storeSecretsFromDir(cfg.storeSecretDir);
  return { store: openStore(cfg.storeUrl, secrets.options), trustedKeys: secrets.trustedKeys, allowUnsigned: cfg.allowUnsigned ?? false };
}

export class Locations implements ImageLocations {
  constructor(
    private readonly shared: ImageStore,
    private readonly remote?: RemoteImages,
  ) {}

  /** The store key of a location in the image store, checked to be NAMESPACE/NAME of this namespace; undefined for another location. */
  private keyOf(imageLocation: string, namespace: string): string | undefined {
    const base = this.remote ? `${this.remote.store.url}/` : undefined;
    if (!base || !imageLocation.startsWith(base)) return undefined;
    const key = imageLocation.slice(base.length);
    const parts = key.split('/');
    if (parts.length !== 2 || parts[0] !== namespace) throw new StorageError(`imageLocation ${imageLocation} is not a checkpoint of namespace ${namespace} in ${this.remote!.store.url}`);
    try {
      this.remote!.store.urlOf(key);
    } catch (err) {
      throw new StorageError(`imageLocation ${imageLocation}: ${(err as Error).message}`, { cause: err });
    }
    return key;
  }

  async remove(imageLocation: string, namespace: string): Promise<'removed' | 'absent'> {
    const key = this.keyOf(imageLocation, namespace);
    if (key === undefined) return this.shared.remove(imageLocation, namespace);
    return this.remote!.store.remove(key);
  }

  async readPod(imageLocation: string, namespace: string): Promise<Record<string, unknown>> {
    const key = this.keyOf(imageLocation, namespace);
    if (key === undefined) return this.shared.readPod(imageLocation, namespace);
    const { store, trustedKeys, allowUnsigned } = this.remote!;
    let pod: unknown;
    try {
      const seal = parseSealText((await store.readFile(key, SEAL_FILE, 4 << 20)).toString('utf8'));
      checkSignature(seal, { trusted: trustedKeys, allowUnsigned });
      const entry = seal.files.find((f) => f.path === POD_FILE);
      if (!entry) throw new SealError('Missing', POD_FILE, 'is not covered by the seal');
      const buf = await store.readFile(key, POD_FILE, 1 << 20);
      if (buf.length !== entry.size || createHash('sha256').update(buf).digest('hex') !== entry.sha256) {
        throw new SealError('Hash', POD_FILE, 'does not match the seal (altered)');
      }
      pod = JSON.parse(buf.toString('utf8'));
    } catch (err) {
      throw new StorageError(`${imageLocation}/${POD_FILE}: ${(err as Error).message}`, { cause: err });
    }
    if (typeof pod !== 'object' || pod === null || Array.isArray(pod)) throw new StorageError(`${imageLocation}/${POD_FILE} is not a JSON object`);
    return pod as Record<string, unknown>;
  }
}
