/**
 * The Cryopod API (group cryopod.io, version v1alpha1): TypeScript types of the Checkpoint and Restore
 * custom resources. The CRD manifests in this folder are the schema the API server enforces; these types
 * must match them field for field (a test checks the CRDs against them).
 *
 * Who writes what (one writer per status field):
 *   operator   status.phase Pending → Dispatched (and Failed for validation, timeouts), status.nodeName,
 *              the label cryopod.io/node, conditions Dispatched/Ready (reason) and observedGeneration
 *   node agent status.phase Dispatched → Running (its claim, with optimistic concurrency on
 *              resourceVersion) → Succeeded/Failed, status.claimedBy, status.containers, status.durations,
 *              status.image, and the condition Ready when it finishes
 * The labels, finalizer, condition types and reasons they write are in kube/constants.ts.
 */

export const GROUP = 'cryopod.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const CHECKPOINT_PLURAL = 'checkpoints';
export const RESTORE_PLURAL = 'restores';

export type CheckpointPhase = 'Pending' | 'Dispatched' | 'Running' | 'Succeeded' | 'Failed';
export type RestorePhase = 'Pending' | 'Dispatched' | 'Running' | 'Succeeded' | 'Failed';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  creationTimestamp?: string;
  deletionTimestamp?: string;
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
}

/** metav1.Condition */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface CheckpointSpec {
  /** The pod to checkpoint, in the Checkpoint's namespace. */
  podName: string;
  /** Containers to checkpoint (default: all app containers). */
  containers?: string[];
  /** Keep the pod running after the checkpoint (default true); false stops it (migration). */
  leaveRunning?: boolean;
  /** Name of a storage location the agents know (default "default"). */
  storageLocation?: string;
  /** Fail the checkpoint if it has not finished after this many seconds (default 300). */
  timeoutSeconds?: number;
  /** Keep the stored images when this Checkpoint is deleted (default false). */
  retainImages?: boolean;
}

export interface ContainerResult {
  name: string;
  containerID?: string;
  pids: number[];
  pages: number;
  bytes: number;
}

export interface PhaseDurations {
  freezeSeconds?: number;
  dumpSeconds?: number;
  uploadSeconds?: number;
}

export interface CheckpointStatus {
  phase?: CheckpointPhase;
  nodeName?: string;
  /**
   * UID of the pod the operator resolved spec.podName to (added by the operator engineer): the agent
   * checkpoints only a pod with this UID, so a pod deleted and re-created under the same name is never dumped.
   */
  podUID?: string;
  /** Agent identity (node name + pod name of the agent) that claimed the work. */
  claimedBy?: string;
  dispatchedAt?: string;
  startedAt?: string;
  finishedAt?: string;
  containers?: ContainerResult[];
  durations?: PhaseDurations;
  /** The downtime as a duration string ("23ms", "1.5s"): durations.freezeSeconds, for people. */
  freezeDuration?: string;
  /** Where the images are (a URI: file:///… for a shared directory, s3://bucket/prefix for S3). */
  imageLocation?: string;
  imageSizeBytes?: number;
  /** Progress of the upload to the image store while it runs (bytes before encryption). */
  transfer?: { doneBytes: number; totalBytes: number };
  conditions?: Condition[];
  observedGeneration?: number;
}

export interface Checkpoint {
  apiVersion: typeof API_VERSION;
  kind: 'Checkpoint';
  metadata: ObjectMeta;
  spec: CheckpointSpec;
  status?: CheckpointStatus;
}

export interface RestoreSpec {
  /** A Checkpoint in the Restore's own namespace. */
  checkpointName: string;
  /** Node to restore on (default: the checkpoint's node). */
  targetNode?: string;
  /** Name of the new pod (default: <checkpoint>-restored). */
  newPodName?: string;
  timeoutSeconds?: number;
}

export interface RestoreStatus {
  phase?: RestorePhase;
  podName?: string;
  nodeName?: string;
  claimedBy?: string;
  /** Added by the operator engineer, same meaning as on CheckpointStatus: the claim timeout counts from dispatchedAt. */
  dispatchedAt?: string;
  startedAt?: string;
  finishedAt?: string;
  durations?: { downloadSeconds?: number; restoreSeconds?: number };
  /** Progress of the download from the image store while it runs (bytes after decryption). */
  transfer?: { doneBytes: number; totalBytes: number };
  conditions?: Condition[];
  observedGeneration?: number;
}

export interface Restore {
  apiVersion: typeof API_VERSION;
  kind: 'Restore';
  metadata: ObjectMeta;
  spec: RestoreSpec;
  status?: RestoreStatus;
}
