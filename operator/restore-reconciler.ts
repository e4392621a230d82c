/**
 * The Restore reconciler, level-based like the Checkpoint one:
 *
 *   Pending    Checkpoint missing → Failed/CheckpointNotFound; Failed → Failed/CheckpointNotReady; not yet
 *              Succeeded → wait (CheckpointNotReady, until the timeout); else read pod.json from its images;
 *              the target node missing → Failed/NodeNotFound; the saved pod's nodeSelector, required node
 *              affinity or tolerations not satisfied there → Failed/PlacementConflict; else create the new Pod (owned by this Restore, pinned to the target node), label
 *              cryopod.io/node=NODE, status Dispatched + podName + nodeName + dispatchedAt
 *   Dispatched no agent claimed it within the agent-claim timeout → Failed/AgentUnavailable
 *   Running    spec.timeoutSeconds after creation → Failed/Timeout (in every open phase)
 *
 * No finalizer: the Pod is owned by the Restore, so the garbage collector deletes it with the Restore.
 * Creating the Pod is idempotent across restarts: an existing pod of that name owned by this Restore
 * (same uid) is the one we made before a crash; any other pod of that name is a clear failure.
 */
import type { Checkpoint, Restore, RestoreStatus } from '../crds/types';
import { ConditionType, DEFAULT_TIMEOUT_SECONDS, NODE_LABEL, Reason, splitKey, type ReconcileResult } from '../kube';
import { msUntil, type Ctx } from './context';
import { isAlreadyExists } from './kube/client';
import { crPath, podPath } from './kube/paths';
import { condition, failWith, getOrUndefined, readyReason, setLabel, writeStatusWithEvent } from './objects';
import { nodeFacts, placementConflict } from './placement';
import { buildRestorePod } from './restore-pod';
import { StorageError } from './storage';

/** How long after its deadline a Running (claimed) restore is left to its agent. */
const RUNNING_GRACE_SECONDS = 30;

interface PodMeta {
  metadata: { name: string; ownerReferences?: Array<{ uid: string }> };
}

export class RestoreReconciler {
  constructor(private readonly ctx: Ctx) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const [ns, name] = splitKey(key);
    const r = await getOrUndefined<Restore>(this.ctx.client, crPath('restores', ns, name));
    if (!r || r.metadata.deletionTimestamp) return;

    const phase = r.status?.phase ?? 'Pending';
    if (phase === 'Succeeded' || phase === 'Failed') {
      this.ctx.metrics.finished('restore', r.metadata.uid!, phase === 'Succeeded' ? 'succeeded' : 'failed', readyReason(r));
      return;
    }
    // A claimed (Running) restore belongs to its agent, which enforces the same deadline itself and may be
    // mid-morph at that instant: the operator steps in only a grace period later (the agent died), so it
    // never marks Failed a restore whose process is about to run.
    const grace = phase === 'Running' ? RUNNING_GRACE_SECONDS : 0;
    const deadlineMs = msUntil(this.ctx.now(), r.metadata.creationTimestamp, (r.spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) + grace);
    if (deadlineMs <= 0) return this.fail(r, Reason.Timeout, `not finished within spec.timeoutSeconds=${r.spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS} (phase was ${phase})`);

    let next: ReconcileResult | void;
    if (phase === 'Pending') next = await this.dispatch(r);
    else if (phase === 'Dispatched') {
      const t = this.ctx.cfg.agentClaimTimeoutSeconds;
      const left = msUntil(this.ctx.now(), r.status?.dispatchedAt, t);
      if (left <= 0) return this.fail(r, Reason.AgentUnavailable, `no agent on node ${r.status?.nodeName} claimed the restore within ${t}s`);
      next = { requeueAfterMs: left };
    } else next = { requeueAfterMs: deadlineMs };
    if (next?.requeueAfterMs !== undefined) next.requeueAfterMs = Math.min(next.requeueAfterMs, deadlineMs);
    return next;
  }

  private async dispatch(r: Restore): Promise<ReconcileResult | void> {
    const { client, cfg, store } = this.ctx;
    const ns = r.metadata.namespace!;
    // Same namespace only, by construction: the path is built from the Restore's own namespace.
    const cp = await getOrUndefined<Checkpoint>(client, crPath('checkpoints', ns, r.spec.checkpointName));
    if (!cp || cp.metadata.deletionTimestamp) {
      return this.fail(r, Reason.CheckpointNotFound, `checkpoint ${ns}/${r.spec.checkpointName} ${cp ? 'is being deleted' : 'does not exist'}`);
    }
    const cpPhase = cp.status?.phase ?? 'Pending';
    if (cpPhase === 'Failed') return this.fail(r, Reason.CheckpointNotReady, `checkpoint ${r.spec.checkpointName} failed`);
    if (cpPhase !== 'Succeeded') {
      await this.write(r, {
        ...r.status,
        phase: 'Pending',
        observedGeneration: r.metadata.generation,
        conditions: this.cond(r, ConditionType.Dispatched, 'False', Reason.CheckpointNotReady, `waiting for checkpoint ${r.spec.checkpointName} (phase ${cpPhase})`),
      }, 'Normal', Reason.CheckpointNotReady);
      return { requeueAfterMs: cfg.pollSeconds * 1000 };
    }

    const node = r.spec.targetNode ?? cp.status?.nodeName;
    if (!node) return this.fail(r, Reason.RestoreFailed, `no spec.targetNode and checkpoint ${cp.metadata.name} has no status.nodeName`);
    if (!cp.status?.imageLocation) return this.fail(r, Reason.ImageCorrupt, `checkpoint ${cp.metadata.name} has no status.imageLocation`);
    let pod;
    try {
      const saved = await store.readPod(cp.status.imageLocation, ns);
      pod = buildRestorePod({
        saved,
        namespace: ns,
        podName: r.spec.newPodName ?? `${r.spec.checkpointName}-restored`,
        nodeName: node,
        restore: { name: r.metadata.name!, uid: r.metadata.uid! },
        checkpointName: cp.metadata.name!,
        stubImage: cfg.stubImage,
        stubSourcePath: cfg.stubPath,
      });
    } catch (err) {
      if (err instanceof StorageError || (err instanceof Error && /pod\.json/.test(err.message))) {
        return this.fail(r, Reason.ImageCorrupt, err.message);
      }
      throw err;
    }

    // Bound directly to the node (no scheduler), so check what the scheduler would have: a tenant who
    // names a node gets no placement its own pod's constraints, or the node's taints, forbid.
    const target = await getOrUndefined<Record<string, unknown>>(client, `/api/v1/nodes/${encodeURIComponent(node)}`);
    if (!target) return this.fail(r, Reason.NodeNotFound, `node ${node} does not exist`);
    const conflict = placementConflict(pod.spec, nodeFacts(target));
    if (conflict) return this.fail(r, Reason.PlacementConflict, `cannot restore onto node ${node}: ${conflict}`);

    const podName = pod.metadata.name as string;
    try {
      await client.create(podPath(ns), pod);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const existing = await getOrUndefined<PodMeta>(client, podPath(ns, podName));
      if (existing && !existing.metadata.ownerReferences?.some((o) => o.uid === r.metadata.uid)) {
        return this.fail(r, Reason.RestoreFailed, `pod ${ns}/${podName} already exists and does not belong to this Restore`);
      }
      if (!existing) throw new Error(`pod ${ns}/${podName} exists but cannot be read`, { cause: err });
    }

    r = await setLabel(client, 'restores', r, NODE_LABEL, node);
    await this.ctx.hooks?.afterDispatchLabel?.('Restore', `${ns}/${r.metadata.name}`);
    await this.write(r, {
      ...r.status,
      phase: 'Dispatched',
      podName,
      nodeName: node,
      dispatchedAt: this.ctx.now().toISOString(),
      observedGeneration: r.metadata.generation,
      conditions: this.cond(r, ConditionType.Dispatched, 'True', Reason.Dispatched, `pod ${podName} created on node ${node}; dispatched to its agent`),
    }, 'Normal', Reason.Dispatched);
    return { requeueAfterMs: cfg.agentClaimTimeoutSeconds * 1000 };
  }

  private fail(r: Restore, reason: string, message: string): Promise<void> {
    return failWith(this.ctx, 'restores', r, reason, message);
  }

  private cond(r: Restore, type: string, status: 'True' | 'False', reason: string, message: string) {
    return condition(this.ctx, r, type, status, reason, message);
  }

  private write(r: Restore, status: RestoreStatus, type: 'Normal' | 'Warning', reason: string): Promise<void> {
    return writeStatusWithEvent(this.ctx, 'restores', r, status, type, reason);
  }
}
