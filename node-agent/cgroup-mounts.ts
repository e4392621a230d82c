/**
 * Where the cgroup hierarchies are mounted, from /proc/self/mountinfo: the v2 (unified) hierarchy and the
 * v1 freezer hierarchy. Nodes differ: pure v2 mounts cgroup2 at /sys/fs/cgroup, hybrid hosts mount it at
 * /sys/fs/cgroup/unified next to the v1 controllers, older nodes have v1 only.
 *
 * The agent must see the host's cgroup tree (the chart mounts it at /sys/fs/cgroup; see README.md). A mount
 * whose root is not "/" (a namespaced or bind-mounted subtree) is honoured by cgroupDir: paths outside it
 * are refused, and resolve.ts then finds the pod's directory by its name below the mount point.
 */
import * as fs from 'fs';
import * as path from 'path';

export interface CgroupMount {
  /** Directory the hierarchy is mounted on. */
  mountPoint: string;
  /** The hierarchy path that appears at mountPoint ("/" normally). */
  root: string;
}

export interface CgroupMounts {
  v2?: CgroupMount;
  freezerV1?: CgroupMount;
}

/** Undoes mountinfo's octal escapes (\040 for a space, ...). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): CgroupMounts {
  const out: CgroupMounts = {};
  for (const line of text.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(' ');
    const [fstype, , superOpts = ''] = line.slice(dash + 3).split(' ');
    const mount = { root: unescape(left[3]), mountPoint: unescape(left[4]) };
    if (fstype === 'cgroup2' && !out.v2) out.v2 = mount;
    if (fstype === 'cgroup' && superOpts.split(',').includes('freezer') && !out.freezerV1) out.freezerV1 = mount;
  }
  return out;
}

export function readCgroupMounts(mountinfo = '/proc/self/mountinfo'): CgroupMounts {
  return parseMountinfo(fs.readFileSync(mountinfo, 'utf8'));
}

/** The directory of a hierarchy path under its mount; throws when the path is outside the mounted root. */
export function cgroupDir(mount: CgroupMount, cgPath: string): string {
  const norm = path.posix.normalize(cgPath);
  const rel = path.posix.relative(mount.root, norm);
  if (!path.posix.isAbsolute(norm) || rel.startsWith('..') || path.posix.isAbsolute(rel)) {
    throw new Error(`cgroup ${cgPath} is outside the mounted hierarchy root ${mount.root} at ${mount.mountPoint}`);
  }
  return path.join(mount.mountPoint, rel);
}
