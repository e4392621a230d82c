/**
 * The Checkpoint reconciler, level-based (STYLE 12): GET → deletion (finalizer: delete images) → add the
 * finalizer → act on the current phase → write status only when it changed. It never remembers anything
 * between runs: what it did is in the object (label, status), so a restarted operator picks up exactly
 * where the last one stopped.
 *
 *   Pending    pod missing → Failed/PodNotFound; not scheduled → wait (PodNotScheduled);
 *              else label cryopod.io/node=NODE, then status Dispatched + nodeName + podUID + dispatchedAt
 *   Dispatched no agent claimed it within the agent-claim timeout → Failed/AgentUnavailable
 *   Running    the agent works; spec.timeoutSeconds after creation → Failed/Timeout (in every open phase)
 *   Succeeded  retention: keep-last N per pod, TTL after finish
 */
import type { Checkpoint, CheckpointStatus } from '../crds/types';
import { ConditionType, DEFAULT_TIMEOUT_SECONDS, IMAGES_FINALIZER, NODE_LABEL, Reason, splitKey, type ReconcileResult } from '../kube';
import { msUntil, type Ctx } from './context';
import { podPath, crPath } from './kube/paths';
import { isNotFound } from './kube/client';
import { addFinalizer, condition, failWith, readyReason, getOrUndefined, removeFinalizer, setLabel, writeStatusWithEvent } from './objects';
import { beyondKeepLast, ttlRemainingMs } from './retention';
import { StorageError } from './storage';

interface Pod {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { nodeName?: string; containers: Array<{ name: string }> };
}

export class CheckpointReconciler {
  constructor(private readonly ctx: Ctx) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const [ns, name] = splitKey(key);
    const { client } = this.ctx;
    let cp = await getOrUndefined<Checkpoint>(client, crPath('checkpoints', ns, name));
    if (!cp) return;
    if (cp.metadata.deletionTimestamp) return this.finalize(cp);
    cp = await addFinalizer(client, 'checkpoints', cp, IMAGES_FINALIZER);

    const phase = cp.status?.phase ?? 'Pending';
    if (phase === 'Succeeded' || phase === 'Failed') return this.finished(cp);

    const deadlineMs = msUntil(this.ctx.now(), cp.metadata.creationTimestamp, cp.spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS);
    if (deadlineMs <= 0) {
      return this.fail(cp, Reason.Timeout, `not finished within spec.timeoutSeconds=${cp.spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS} (phase was ${phase})`);
    }
    let next: ReconcileResult | void;
    if (phase === 'Pending') next = await this.dispatch(cp);
    else if (phase === 'Dispatched') next = await this.awaitClaim(cp);
    else next = { requeueAfterMs: deadlineMs }; // Running: the agent reports; we only watch the clock
    if (next?.requeueAfterMs !== undefined) next.requeueAfterMs = Math.min(next.requeueAfterMs, deadlineMs);
    return next;
  }

  private async dispatch(cp: Checkpoint): Promise<ReconcileResult | void> {
    const { client, cfg } = this.ctx;
    const ns = cp.metadata.namespace!;
    const pod = await getOrUndefined<Pod>(client, podPath(ns, cp.spec.podName));
    if (!pod || pod.metadata.deletionTimestamp) {
      return this.fail(cp, Reason.PodNotFound, `pod ${ns}/${cp.spec.podName} ${pod ? 'is being deleted' : 'does not exist'}`);
    }
    const missing = (cp.spec.containers ?? []).filter((c) => !pod.spec.containers.some((pc) => pc.name === c));
    if (missing.length) return this.fail(cp, Reason.ContainerNotFound, `pod ${cp.spec.podName} has no container ${missing.join(', ')}`);

    const node = pod.spec.nodeName;
    if (!node) {
      await this.write(cp, {
        ...cp.status,
        phase: 'Pending',
        observedGeneration: cp.metadata.generation,
        conditions: this.cond(cp, ConditionType.Dispatched, 'False', Reason.PodNotScheduled, `pod ${cp.spec.podName} is not scheduled to a node yet`),
      }, 'Normal', Reason.PodNotScheduled);
      return { requeueAfterMs: cfg.pollSeconds * 1000 };
    }

    // Label first, status second: the agent acts on phase Dispatched of objects with its label, so a crash
    // in between leaves a labeled Pending object that no agent touches and the next reconcile completes.
    cp = await setLabel(client, 'checkpoints', cp, NODE_LABEL, node);
    await this.ctx.hooks?.afterDispatchLabel?.('Checkpoint', `${ns}/${cp.metadata.name}`);
    const now = this.ctx.now().toISOString();
    await this.write(cp, {
      ...cp.status,
      phase: 'Dispatched',
      nodeName: node,
      podUID: pod.metadata.uid,
      dispatchedAt: now,
      observedGeneration: cp.metadata.generation,
      conditions: this.cond(cp, ConditionType.Dispatched, 'True', Reason.Dispatched, `dispatched to the agent on node ${node}`),
    }, 'Normal', Reason.Dispatched);
    return { requeueAfterMs: cfg.agentClaimTimeoutSeconds * 1000 };
  }

  private async awaitClaim(cp: Checkpoint): Promise<ReconcileResult | void> {
    const t = this.ctx.cfg.agentClaimTimeoutSeconds;
    const left = msUntil(this.ctx.now(), cp.status?.dispatchedAt, t);
    if (left > 0) return { requeueAfterMs: left };
    return this.fail(cp, Reason.AgentUnavailable, `no agent on node ${cp.status?.nodeName} claimed the checkpoint within ${t}s`);
  }

  private async finished(cp: Checkpoint): Promise<ReconcileResult | void> {
    const { client, cfg, metrics } = this.ctx;
    const succeeded = cp.status?.phase === 'Succeeded';
    metrics.finished('checkpoint', cp.metadata.uid!, succeeded ? 'succeeded' : 'failed', readyReason(cp));
    const ns = cp.metadata.namespace!;
    if (succeeded && cfg.keepLast > 0) {
      const list = await client.get<{ items: Checkpoint[] }>(crPath('checkpoints', ns));
      for (const old of beyondKeepLast(list.items, cp.spec.podName, cfg.keepLast)) {
        this.ctx.log(`retention: deleting checkpoint ${ns}/${old.metadata.name} (keep-last ${cfg.keepLast} for pod ${cp.spec.podName})`);
        await this.deleteCheckpoint(old);
        await this.ctx.events.record(old, 'Normal', 'Retention', `deleted: more than ${cfg.keepLast} newer checkpoints of pod ${cp.spec.podName}`);
      }
    }
    const ttl = ttlRemainingMs(cp, cfg.ttlSecondsAfterFinished, this.ctx.now());
    if (ttl === undefined) return;
    if (ttl > 0) return { requeueAfterMs: ttl };
    this.ctx.log(`ttl: deleting checkpoint ${ns}/${cp.metadata.name}`);
    await this.deleteCheckpoint(cp);
  }

  private async deleteCheckpoint(cp: Checkpoint): Promise<void> {
    try {
      // The uid precondition: never delete a newer object that took the same name.
      await this.ctx.client.delete(crPath('checkpoints', cp.metadata.namespace, cp.metadata.name), {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        preconditions: { uid: cp.metadata.uid },
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** The finalizer: delete the images (inside the storage root only), then let the object go. */
  private async finalize(cp: Checkpoint): Promise<ReconcileResult | void> {
    if (!cp.metadata.finalizers?.includes(IMAGES_FINALIZER)) return;
    const { store, events, metrics } = this.ctx;
    const loc = cp.status?.imageLocation;
    if (cp.status?.phase === 'Running') {
      // An agent may still be writing images: deleting now would leak what it writes next. Wait for it
      // to finish, but not beyond the checkpoint's own deadline.
      const left = msUntil(this.ctx.now(), cp.metadata.creationTimestamp, cp.spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS);
      if (left > 0) return { requeueAfterMs: Math.min(left, this.ctx.cfg.pollSeconds * 1000) };
    }
    if (loc && !cp.spec.retainImages) {
      try {
        if ((await store.remove(loc, cp.metadata.namespace!)) === 'removed') {
          metrics.imagesDeleted.inc();
          await events.record(cp, 'Normal', 'ImagesDeleted', `deleted ${loc}`);
        }
      } catch (err) {
        // A location we must not touch (outside the root, another namespace, s3://): say so, keep the files,
        // and let the object go, or it (and its namespace) could never be deleted.
        if (!(err instanceof StorageError)) throw err;
        await events.record(cp, 'Warning', 'ImagesNotDeleted', err.message);
      }
    }
    await removeFinalizer(this.ctx.client, 'checkpoints', cp, IMAGES_FINALIZER);
    // Deleted right after it finished, this operator may never have reconciled the finished state: count it now.
    const phase = cp.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') metrics.finished('checkpoint', cp.metadata.uid!, phase === 'Succeeded' ? 'succeeded' : 'failed', readyReason(cp));
    metrics.forget(cp.metadata.uid!);
  }

  private fail(cp: Checkpoint, reason: string, message: string): Promise<void> {
    return failWith(this.ctx, 'checkpoints', cp, reason, message);
  }

  private cond(cp: Checkpoint, type: string, status: 'True' | 'False', reason: string, message: string) {
    return condition(this.ctx, cp, type, status, reason, message);
  }

  private write(cp: Checkpoint, status: CheckpointStatus, type: 'Normal' | 'Warning', reason: string): Promise<void> {
    return writeStatusWithEvent(this.ctx, 'checkpoints', cp, status, type, reason);
  }
}
