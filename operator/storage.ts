/**
 * The shared-directory image store, as the operator sees it: it only deletes image directories and reads
 * the saved pod (pod.json); the agents write them.
 *
 *   ROOT/                      the storage root (a PVC/NFS/hostPath mounted on every node and the operator)
 *     NAMESPACE/               one directory per namespace: checkpoints are tenant data
 *       NAME-UID/              one Checkpoint's images (status.imageLocation = file://ROOT/NAMESPACE/NAME-UID)
 *         pod.json             the Pod object as it was when dumped (metadata + spec)
 *         ...                  the images and the manifest
 *
 * status.imageLocation is written by an agent and could be wrong or hostile, so a location is used only if
 * it is a file:// URI strictly inside ROOT/NAMESPACE of the object that names it, with no symlink anywhere
 * that leads out (checked on real paths). Nothing outside the root is ever read or deleted.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { POD_FILE } from '../kube';

export class StorageError extends Error {
  override name = 'StorageError';
}

const MAX_POD_JSON = 1 << 20;

export class ImageStore {
  readonly root: string;

  constructor(root: string) {
    if (!path.isAbsolute(root)) throw new StorageError(`storage root ${root} is not an absolute path`);
    this.root = path.resolve(root);
  }

  /** The directory a Checkpoint's images live in, by convention (what an agent should write). */
  dirFor(namespace: string, name: string, uid: string): string {
    return path.join(this.root, namespace, `${name}-${uid}`);
  }

  /**
   * The local directory of an imageLocation, or a StorageError saying why it is refused. The directory
   * need not exist (undefined real path then).
   */
  async resolve(imageLocation: string, namespace: string): Promise<{ dir: string; exists: boolean }> {
    let url: URL;
    try {
      url = new URL(imageLocation);
    } catch (err) {
      throw new StorageError(`imageLocation ${JSON.stringify(imageLocation)} is not a URI`, { cause: err });
    }
    if (url.protocol !== 'file:') throw new StorageError(`imageLocation ${imageLocation}: only file:// locations are handled by this operator`);
    if (url.hostname && url.hostname !== 'localhost') throw new StorageError(`imageLocation ${imageLocation}: a file URI with a remote host`);
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace)) throw new StorageError(`bad namespace ${namespace}`);
    let dir = path.resolve(fileURLToPath(url));
    const nsDir = path.join(this.root, namespace);
    if (!strictlyInside(nsDir, dir)) {
      // Agents may name the root by its real path (the root itself a symlink, e.g. /var/lib → /data/lib).
      const realNsDir = path.join(await fs.realpath(this.root).catch(() => this.root), namespace);
      if (!strictlyInside(realNsDir, dir)) throw new StorageError(`imageLocation ${imageLocation} is outside ${nsDir}`);
      dir = path.join(nsDir, path.relative(realNsDir, dir));
    }

    // The same check on real paths: a symlinked component must not lead out of the root.
    // For a directory that does not exist, its nearest existing ancestor must stay inside.
    const realNs = await fs.realpath(nsDir).catch(() => nsDir);
    let probe = dir;
    for (;;) {
      let real: string;
      try {
        real = await fs.realpath(probe);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        if (probe === nsDir) return { dir, exists: false }; // not even the namespace dir exists
        probe = path.dirname(probe);
        continue;
      }
      if (real !== realNs && !strictlyInside(realNs, real)) throw new StorageError(`imageLocation ${imageLocation} leads outside ${nsDir} (symlink)`);
      if (probe !== dir) return { dir, exists: false };
      if (real === realNs) throw new StorageError(`imageLocation ${imageLocation} is the namespace directory itself (symlink)`);
      break;
    }
    const st = await fs.lstat(dir);
    if (!st.isDirectory()) throw new StorageError(`imageLocation ${imageLocation} is not a directory`);
    return { dir, exists: true };
  }

  /** Deletes a Checkpoint's image directory; 'absent' if it is already gone. rm never follows symlinks inside. */
  async remove(imageLocation: string, namespace: string): Promise<'removed' | 'absent'> {
    const { dir, exists } = await this.resolve(imageLocation, namespace);
    if (!exists) return 'absent';
    await fs.rm(dir, { recursive: true, force: true });
    return 'removed';
  }

  /** The saved Pod (pod.json) of a checkpoint: a regular file, at most 1 MiB, a JSON object. */
  async readPod(imageLocation: string, namespace: string): Promise<Record<string, unknown>> {
    const { dir, exists } = await this.resolve(imageLocation, namespace);
    if (!exists) throw new StorageError(`image directory ${dir} does not exist`);
    const file = path.join(dir, POD_FILE);
    let st;
    try {
      st = await fs.lstat(file);
    } catch (err) {
      throw new StorageError(`${file}: ${(err as Error).message}`, { cause: err });
    }
    if (!st.isFile()) throw new StorageError(`${file} is not a regular file`);
    if (st.size > MAX_POD_JSON) throw new StorageError(`${file} is ${st.size} bytes, more than ${MAX_POD_JSON}`);
    let pod: unknown;
    try {
      pod = JSON.parse(await fs.readFile(file, 'utf8'));
    } catch (err) {
      throw new StorageError(`${file} is not JSON`, { cause: err });
    }
    if (typeof pod !== 'object' || pod === null || Array.isArray(pod)) throw new StorageError(`${file} is not a JSON object`);
    return pod as Record<string, unknown>;
  }
}

function strictlyInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}
