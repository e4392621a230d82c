/**
 * Which containers of a Pod a Checkpoint covers (spec.containers, default every app container) and their
 * runtime IDs from status.containerStatuses; and the Pod as it is saved next to the images (pod.json).
 */
import type { V1Pod } from '@kubernetes/client-node';
import { Reason } from '../kube';
import { ContainerRef } from './resolve';
import { WorkError } from './work-error';

export function selectContainers(pod: V1Pod, wanted: string[] | undefined): ContainerRef[] {
  const all = (pod.spec?.containers ?? []).map((c) => c.name);
  const names = wanted && wanted.length > 0 ? wanted : all;
  const statuses = pod.status?.containerStatuses ?? [];
  return names.map((name) => {
    if (!all.includes(name)) throw new WorkError(Reason.DumpFailed, `pod ${pod.metadata?.name} has no container ${name} (it has: ${all.join(', ')})`, { code: 'ENOCONTAINER' });
    const st = statuses.find((s) => s.name === name);
    if (!st?.containerID) throw new WorkError(Reason.DumpFailed, `container ${name} has no containerID in the pod's status (not started yet?)`, { code: 'ENOCONTAINER' });
    if (st.state && !st.state.running) throw new WorkError(Reason.DumpFailed, `container ${name} is not running`, { code: 'ENOTRUNNING' });
    return { name, containerID: st.containerID };
  });
}

/** The Pod without server-side bookkeeping (managedFields), as the operator will read it for a Restore. */
export function savedPod(pod: V1Pod): V1Pod {
  const metadata = { ...pod.metadata };
  delete metadata.managedFields;
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: pod.spec, status: pod.status };
}
