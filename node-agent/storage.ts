/**
 * The shared-directory image store: one directory per checkpoint under the storage root.
 *
 *   <root>/<namespace>/<checkpoint>-<uid>/pod.json       the Pod as it was (the operator restores from it)
 *   <root>/<namespace>/<checkpoint>-<uid>/<container>/   CRIU images + cryopod-manifest.json (dumpProcess)
 *
 * (The Checkpoint's UID in the name, as crds/ documents imageLocation: a Checkpoint deleted with
 * retainImages and created again under the same name never meets the old images.)
 *
 * Names are validated as Kubernetes names before they become path segments, and every directory is
 * checked (after resolving symlinks) to be inside the root: the agent never writes anywhere else.
 */
import * as fs from 'fs';
import * as path from 'path';
import { POD_FILE } from '../kube';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const UID = /^[0-9a-f][0-9a-f-]{0,63}$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function checkName(kind: string, value: string, re: RegExp): string {
  if (!re.test(value) || value.split('.').some((p) => p === '' || p === '..')) {
    throw new Error(`${kind} ${JSON.stringify(value)} is not a valid Kubernetes name`);
  }
  return value;
}

/** Which Checkpoint a directory belongs to. */
export interface CheckpointRef {
  namespace: string;
  name: string;
  uid: string;
}

export function refOf(meta: { namespace?: string; name?: string; uid?: string }): CheckpointRef {
  return { namespace: meta.namespace ?? '', name: meta.name ?? '', uid: meta.uid ?? '' };
}

export class ImageStore {
  readonly root: string;

  constructor(root: string) {
    if (!path.isAbsolute(root)) throw new Error(`storage root must be an absolute path, got ${root}`);
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    this.root = fs.realpathSync(root);
  }

  /** <root>/<namespace>/<checkpoint>-<uid>, not created. */
  checkpointDir(cp: CheckpointRef): string {
    if (!UID.test(cp.uid)) throw new Error(`checkpoint UID ${JSON.stringify(cp.uid)} is not a UID`);
    return this.inside(path.join(this.root, checkName('namespace', cp.namespace, DNS_LABEL), `${checkName('checkpoint name', cp.name, DNS_SUBDOMAIN)}-${cp.uid}`));
  }

  containerDir(cp: CheckpointRef, container: string): string {
    return this.inside(path.join(this.checkpointDir(cp), checkName('container name', container, DNS_LABEL)));
  }

  /**
   * Creates a directory (mode 0700: images are tenant data) one component at a time below the root,
   * refusing any component that is a symlink, so nothing is ever created outside the root.
   */
  mkdir(dir: string): string {
    const rel = path.relative(this.root, this.inside(dir));
    let cur = this.root;
    for (const part of rel.split(path.sep)) {
      cur = path.join(cur, part);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(cur);
      } catch {
        fs.mkdirSync(cur, { mode: 0o700 });
        continue;
      }
      if (st.isSymbolicLink() || !st.isDirectory()) throw new Error(`${cur} is a symlink or not a directory: outside the storage root ${this.root}`);
    }
    return cur;
  }

  writePodJson(cp: CheckpointRef, pod: unknown): string {
    const file = path.join(this.mkdir(this.checkpointDir(cp)), POD_FILE);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(pod, null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(`${file}.tmp`, file);
    return file;
  }

  /**
   * An existing directory given by a file:// image location, after resolving symlinks: only inside the
   * storage root, and only exactly the directory of the Checkpoint `expected` (so a status pointing at
   * another namespace's or another checkpoint's images is refused). Throws with the reason.
   */
  checkpointDirAt(location: string, expected: CheckpointRef): string {
    let url: URL;
    try {
      url = new URL(location);
    } catch {
      throw new Error(`image location ${JSON.stringify(location)} is not a URI`);
    }
    if (url.protocol !== 'file:') throw new Error(`image location ${location}: only file:// (a shared directory) is supported by this agent`);
    const want = this.checkpointDir(expected);
    let real: string;
    try {
      real = fs.realpathSync(decodeURIComponent(url.pathname));
    } catch (err) {
      throw new Error(`image location ${location} does not exist on this node (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    this.inside(real);
    if (real !== want) throw new Error(`image location ${location} is not the directory of checkpoint ${expected.namespace}/${expected.name} (${want})`);
    if (!fs.statSync(real).isDirectory()) throw new Error(`image location ${location} is not a directory`);
    return real;
  }

  /** An existing container directory below a checkpoint directory, symlinks refused. */
  existingContainerDir(cp: CheckpointRef, container: string): string {
    const dir = this.containerDir(cp, container);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(dir);
    } catch {
      throw new Error(`the checkpoint has no images for container ${container} (${dir} is missing)`);
    }
    if (st.isSymbolicLink() || !st.isDirectory()) throw new Error(`${dir} is a symlink or not a directory`);
    return dir;
  }

  /** Removes a checkpoint's directory (a partial or failed one). */
  remove(cp: CheckpointRef): void {
    fs.rmSync(this.checkpointDir(cp), { recursive: true, force: true });
  }

  /** Total bytes of the regular files below dir. */
  sizeOf(dir: string): number {
    let total = 0;
    for (const e of fs.readdirSync(this.inside(dir), { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) total += this.sizeOf(p);
      else if (e.isFile()) total += fs.statSync(p).size;
    }
    return total;
  }

  private inside(p: string): string {
    const rel = path.relative(this.root, path.resolve(p));
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`${p} is outside the storage root ${this.root}`);
    return path.resolve(p);
  }
}
