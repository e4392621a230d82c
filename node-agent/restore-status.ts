/**
 * The Restore status fields the agent writes (crds/types.ts: phase from Dispatched on, claimedBy,
 * startedAt, finishedAt, durations, the Ready condition; podName and nodeName only where the operator left
 * them empty, since it owns them). Every function returns a new Restore keeping the operator's fields.
 */
import { Restore, RestoreStatus } from '../crds/types';
import { ConditionType, Reason, setCondition } from '../kube';

function withStatus(r: Restore, status: RestoreStatus): Restore {
  return { ...r, status };
}

export function restoreClaimed(r: Restore, agentId: string, now: Date): Restore {
  return withStatus(r, { ...r.status, phase: 'Running', claimedBy: agentId, startedAt: now.toISOString() });
}

export interface RestoreResult {
  podName: string;
  nodeName: string;
  containers: Array<{ name: string; pid: number }>;
  durations: { downloadSeconds: number; restoreSeconds: number };
}

export function restoreSucceeded(r: Restore, res: RestoreResult, now: Date): Restore {
  const list = res.containers.map((c) => `${c.name} (pid ${c.pid})`).join(', ');
  return withStatus(r, {
    ...r.status,
    phase: 'Succeeded',
    finishedAt: now.toISOString(),
    podName: r.status?.podName ?? res.podName,
    nodeName: r.status?.nodeName ?? res.nodeName,
    durations: res.durations,
    conditions: setCondition(
      r.status?.conditions,
      {
        type: ConditionType.Ready,
        status: 'True',
        reason: Reason.Succeeded,
        message: `restored ${res.containers.length} container(s) of pod ${res.podName} in ${res.durations.restoreSeconds.toFixed(3)}s: ${list}`,
        observedGeneration: r.metadata.generation,
      },
      now,
    ),
  });
}

export function restoreFailed(r: Restore, reason: string, message: string, now: Date): Restore {
  return withStatus(r, {
    ...r.status,
    phase: 'Failed',
    finishedAt: now.toISOString(),
    conditions: setCondition(r.status?.conditions, { type: ConditionType.Ready, status: 'False', reason, message, observedGeneration: r.metadata.generation }, now),
  });
}
