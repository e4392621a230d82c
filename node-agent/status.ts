/**
 * The status fields the agent writes (crds/types.ts: phase from Dispatched on, claimedBy, startedAt,
 * finishedAt, containers, durations, imageLocation, imageSizeBytes, the Ready condition). Every function
 * returns a new Checkpoint whose status keeps the operator's fields as they were.
 */
import { Checkpoint, CheckpointStatus, ContainerResult, PhaseDurations } from '../crds/types';
import { ConditionType, Reason, setCondition } from '../kube';

function withStatus(cp: Checkpoint, status: CheckpointStatus): Checkpoint {
  return { ...cp, status };
}

export function claimed(cp: Checkpoint, agentId: string, now: Date): Checkpoint {
  return withStatus(cp, { ...cp.status, phase: 'Running', claimedBy: agentId, startedAt: now.toISOString() });
}

export interface SuccessResult {
  containers: ContainerResult[];
  durations: PhaseDurations;
  /** The downtime, as a duration string ("23ms"). */
  freezeDuration?: string;
  imageLocation: string;
  imageSizeBytes: number;
}

export function succeeded(cp: Checkpoint, r: SuccessResult, now: Date): Checkpoint {
  const total = r.containers.reduce((n, c) => n + c.pages, 0);
  return withStatus(cp, {
    ...cp.status,
    phase: 'Succeeded',
    finishedAt: now.toISOString(),
    containers: r.containers,
    durations: r.durations,
    ...(r.freezeDuration ? { freezeDuration: r.freezeDuration } : {}),
    imageLocation: r.imageLocation,
    imageSizeBytes: r.imageSizeBytes,
    conditions: setCondition(
      cp.status?.conditions,
      {
        type: ConditionType.Ready,
        status: 'True',
        reason: Reason.Succeeded,
        message: `checkpointed ${r.containers.length} container(s), ${total} pages, ${r.imageSizeBytes} bytes at ${r.imageLocation}`,
        observedGeneration: cp.metadata.generation,
      },
      now,
    ),
  });
}

export function failed(cp: Checkpoint, reason: string, message: string, now: Date): Checkpoint {
  const status: CheckpointStatus = {
    ...cp.status,
    phase: 'Failed',
    finishedAt: now.toISOString(),
    conditions: setCondition(cp.status?.conditions, { type: ConditionType.Ready, status: 'False', reason, message, observedGeneration: cp.metadata.generation }, now),
  };
  delete status.imageLocation;
  delete status.imageSizeBytes;
  return withStatus(cp, status);
}
