/**
 * The names the operator, the agent and their users share, in one place: labels, annotations, the
 * finalizer, condition types and reasons (an Event carries the same reason as the condition; the table in
 * docs/operations.md lists them), the file names of a stored checkpoint, defaults, and who we are to the
 * API server. The API's own identity (group, version, plurals) is in crds/types.ts with its types.
 */

/** Label the operator puts on work for a node; each agent watches only its own node's value. */
export const NODE_LABEL = 'cryopod.io/node';
/** Label on a restore pod: the Restore that made it. */
export const RESTORE_LABEL = 'cryopod.io/restore';
/** Annotations on a restore pod: the Checkpoint it was made from and the pod that was checkpointed. */
export const CHECKPOINT_ANNOTATION = 'cryopod.io/checkpoint';
export const ORIGINAL_POD_ANNOTATION = 'cryopod.io/original-pod';
/** Finalizer that deletes stored images when a Checkpoint is deleted (unless spec.retainImages). */
export const IMAGES_FINALIZER = 'cryopod.io/images';

/** The saved Pod (metadata + spec) beside a checkpoint's container images; a Restore is made from it. */
export const POD_FILE = 'pod.json';

/** spec.timeoutSeconds when it is not set (the CRDs default it to the same value). */
export const DEFAULT_TIMEOUT_SECONDS = 300;

/** Event source components and field managers. */
export const OPERATOR_COMPONENT = 'cryopod-operator';
export const AGENT_COMPONENT = 'cryopod-agent';

/** Condition types both components write. */
export const ConditionType = { Ready: 'Ready', Dispatched: 'Dispatched' } as const;

/** Reasons of conditions and Events (docs/operations.md explains each). */
export const Reason = {
  Dispatched: 'Dispatched',
  Succeeded: 'Succeeded',
  PodNotFound: 'PodNotFound',
  ContainerNotFound: 'ContainerNotFound',
  PodNotScheduled: 'PodNotScheduled',
  AgentUnavailable: 'AgentUnavailable',
  AgentRestarted: 'AgentRestarted',
  Timeout: 'Timeout',
  DumpFailed: 'DumpFailed',
  Unsupported: 'Unsupported',
  UploadFailed: 'UploadFailed',
  InsufficientStorage: 'InsufficientStorage',
  CheckpointNotFound: 'CheckpointNotFound',
  CheckpointNotReady: 'CheckpointNotReady',
  ImageCorrupt: 'ImageCorrupt',
  RestoreFailed: 'RestoreFailed',
  NodeNotFound: 'NodeNotFound',
  PlacementConflict: 'PlacementConflict',
} as const;
