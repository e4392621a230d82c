/**
 * The restored pod, pure: the saved Pod (pod.json, written by the agent at dump time) turned into a new Pod
 * that the agent can morph into the checkpointed processes.
 *
 *   saved pod.json                          new Pod
 *   metadata.name  web                 →    spec.newPodName (default CHECKPOINT-restored); spec.hostname web
 *   metadata.labels                    →    kept (+ cryopod.io/restore), so Services still select it
 *   spec.nodeName                      →    target node (pinned: its agent morphs the stubs); nodeSelector,
 *                                            affinity and tolerations kept (checked first by placement.ts,
 *                                            and again by the kubelet's admission)
 *   initContainers                     →    replaced by one that copies the stub into an emptyDir at /cryopod
 *   containers[i].command/args         →    ["/cryopod/cryopod-stub"], no args; liveness and startup probes
 *                                            and hooks removed, the readiness probe kept
 *   restartPolicy                      →    Never: a restarted container would be a fresh stub, not the app
 *   ownerReferences                    →    the Restore (controller), so deleting the Restore deletes the pod
 *
 * Why these: the container runtime builds namespaces, cgroups, rootfs and credentials from the same spec, so
 * the stub lands in the same environment; the hostname is part of the saved UTS state; a liveness or startup
 * probe or a postStart hook would act on the stub before it is morphed (and kill it); the readiness probe
 * only keeps the pod out of its Services until the morphed program answers it, which is what it should
 * say; the original init containers already ran once.
 */
import { API_VERSION } from '../crds/types';
import { CHECKPOINT_ANNOTATION, NODE_LABEL, ORIGINAL_POD_ANNOTATION, RESTORE_LABEL } from '../kube';

export const STUB_DIR = '/cryopod';
export const STUB_PATH = `${STUB_DIR}/cryopod-stub`;
export const STUB_VOLUME = 'cryopod-stub';
export const STUB_INIT_CONTAINER = 'cryopod-stub-install';

export interface RestorePodInput {
  saved: Record<string, unknown>;
  namespace: string;
  podName: string;
  nodeName: string;
  restore: { name: string; uid: string };
  checkpointName: string;
  stubImage: string;
  /** Where the stub is inside stubImage. */
  stubSourcePath: string;
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function buildRestorePod(i: RestorePodInput): Json {
  const saved = structuredClone(i.saved) as Json;
  const spec: Json | undefined = saved.spec;
  if (!spec || !Array.isArray(spec.containers) || spec.containers.length === 0) {
    throw new Error('pod.json has no spec.containers: not a saved Pod');
  }
  const originalName: string | undefined = saved.metadata?.name;
  if (spec.volumes?.some((v: Json) => v.name === STUB_VOLUME)) throw new Error(`pod.json already has a volume named ${STUB_VOLUME}`);

  delete spec.ephemeralContainers;
  delete spec.schedulingGates;
  spec.nodeName = i.nodeName;
  spec.restartPolicy = 'Never';
  if (!spec.hostname && originalName && originalName.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(originalName)) {
    spec.hostname = originalName;
  }
  spec.volumes = [...(spec.volumes ?? []), { name: STUB_VOLUME, emptyDir: {} }];
  spec.initContainers = [
    {
      name: STUB_INIT_CONTAINER,
      image: i.stubImage,
      command: ['cp', i.stubSourcePath, STUB_PATH],
      volumeMounts: [{ name: STUB_VOLUME, mountPath: STUB_DIR }],
      securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: false, capabilities: { drop: ['ALL'] } },
    },
  ];
  spec.containers = spec.containers.map((c: Json) => {
    const { livenessProbe, startupProbe, lifecycle, ...rest } = c; // eslint-disable-line @typescript-eslint/no-unused-vars
    return {
      ...rest,
      command: [STUB_PATH],
      args: [],
      volumeMounts: [...(c.volumeMounts ?? []), { name: STUB_VOLUME, mountPath: STUB_DIR, readOnly: true }],
    };
  });

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: i.podName,
      namespace: i.namespace,
      labels: { ...(saved.metadata?.labels ?? {}), [RESTORE_LABEL]: i.restore.name, [NODE_LABEL]: i.nodeName },
      annotations: {
        [CHECKPOINT_ANNOTATION]: i.checkpointName,
        ...(originalName ? { [ORIGINAL_POD_ANNOTATION]: originalName } : {}),
      },
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'Restore', name: i.restore.name, uid: i.restore.uid, controller: true, blockOwnerDeletion: true }],
    },
    spec,
  };
}
