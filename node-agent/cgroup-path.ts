/**
 * Parsing /proc/PID/cgroup and recognising a pod's and a container's cgroup in it.
 *
 * Kubelet names cgroups in two ways, depending on its cgroup driver:
 *
 *   cgroupfs:  /kubepods/besteffort/pod1b4e-…-9f/4f2a…c1              (v1 and v2)
 *   systemd:   /kubepods.slice/kubepods-besteffort.slice/
 *                kubepods-besteffort-pod1b4e_…_9f.slice/cri-containerd-4f2a…c1.scope
 *
 * A container cgroup is a path segment naming the container ID that sits below a segment naming the pod
 * UID (with dashes, or with underscores in the systemd form). Deeper segments (a container's own sub
 * cgroups) still belong to that container.
 */

export interface CgroupLine {
  /** Hierarchy ID: 0 is the unified (v2) hierarchy. */
  hierarchy: number;
  /** Controllers of a v1 hierarchy (empty for v2); named hierarchies keep their "name=" prefix. */
  controllers: string[];
  /** Path relative to the hierarchy's root, starting with "/". */
  path: string;
}

export function parseProcCgroup(text: string): CgroupLine[] {
  const out: CgroupLine[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const hierarchy = Number(line.slice(0, first));
    if (!Number.isInteger(hierarchy)) continue;
    const ctl = line.slice(first + 1, second);
    out.push({ hierarchy, controllers: ctl ? ctl.split(',') : [], path: line.slice(second + 1) });
  }
  return out;
}

const UID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CONTAINER_ID_RE = /^[0-9a-f]{12,128}$/;

/** A pod UID as the API server gives it (a lower-case RFC 4122 UUID), or an error naming the value. */
export function checkPodUid(uid: string): string {
  if (!UID_RE.test(uid)) throw new Error(`pod UID ${JSON.stringify(uid)} is not a UUID`);
  return uid;
}

/** The bare ID from a status.containerStatuses[].containerID such as containerd://<hex>. */
export function parseContainerID(containerID: string): { runtime: string; id: string } {
  const m = /^([a-z0-9-]+):\/\/(.+)$/.exec(containerID);
  if (!m || !CONTAINER_ID_RE.test(m[2])) throw new Error(`container ID ${JSON.stringify(containerID)} is not <runtime>://<hex id>`);
  return { runtime: m[1], id: m[2] };
}

function isPodSegment(seg: string, uid: string): boolean {
  const underscored = uid.replace(/-/g, '_');
  if (seg === `pod${uid}` || seg === `pod${underscored}`) return true;
  return seg.endsWith(`pod${underscored}.slice`) && (seg === `pod${underscored}.slice` || seg.endsWith(`-pod${underscored}.slice`));
}

function isContainerSegment(seg: string, id: string): boolean {
  if (seg === id) return true;
  const m = /^(cri-containerd|containerd|docker|crio|cri-o)-([0-9a-f]+)\.scope$/.exec(seg);
  return !!m && m[2] === id;
}

export interface ContainerCgroup {
  /** Path of the pod's cgroup in its hierarchy, e.g. /kubepods/besteffort/pod<uid>. */
  podPath: string;
  /** Path of the container's cgroup, e.g. /kubepods/besteffort/pod<uid>/<id>. */
  containerPath: string;
}

/**
 * Where a process's cgroup path places it: in this pod's cgroup and this container's (or one of its
 * sub-cgroups). Undefined when the path is not inside both.
 */
export function matchContainerPath(cgPath: string, podUid: string, containerId: string): ContainerCgroup | undefined {
  const segs = cgPath.split('/');
  const p = segs.findIndex((s) => isPodSegment(s, podUid));
  if (p < 0) return undefined;
  for (let c = p + 1; c < segs.length; c++) {
    if (isContainerSegment(segs[c], containerId)) {
      return { podPath: segs.slice(0, p + 1).join('/'), containerPath: segs.slice(0, c + 1).join('/') };
    }
  }
  return undefined;
}
