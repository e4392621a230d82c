/**
 * Object-level steps shared by both reconcilers: GET-or-undefined, the finalizer and node label merge
 * patches, the status write (with its Event), and failing an object with a reason. Every write carries the resourceVersion it was computed from, so it fails
 * with 409 instead of overwriting a change made meanwhile (by the agent, usually): the queue retries and
 * the next reconcile starts again from the current state.
 */
import type { Condition, ObjectMeta } from '../crds/types';
import { ConditionType, setCondition, statusEqual } from '../kube';
import type { Ctx } from './context';
import { isNotFound, type KubeClient } from './kube/client';
import { crPath, type Resource } from './kube/paths';

export interface Obj<S> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  status?: S;
}

export async function getOrUndefined<T>(client: KubeClient, path: string): Promise<T | undefined> {
  try {
    return await client.get<T>(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function meta(o: Obj<unknown>): { ns: string; name: string } {
  return { ns: o.metadata.namespace!, name: o.metadata.name! };
}

export async function addFinalizer<T extends Obj<unknown>>(client: KubeClient, r: Resource, o: T, finalizer: string): Promise<T> {
  if (o.metadata.finalizers?.includes(finalizer)) return o;
  const { ns, name } = meta(o);
  const finalizers = [...(o.metadata.finalizers ?? []), finalizer];
  return client.patch<T>(crPath(r, ns, name), { metadata: { finalizers, resourceVersion: o.metadata.resourceVersion } });
}

export async function removeFinalizer<T extends Obj<unknown>>(client: KubeClient, r: Resource, o: T, finalizer: string): Promise<void> {
  if (!o.metadata.finalizers?.includes(finalizer)) return;
  const { ns, name } = meta(o);
  const finalizers = o.metadata.finalizers.filter((f) => f !== finalizer);
  try {
    await client.patch(crPath(r, ns, name), { metadata: { finalizers, resourceVersion: o.metadata.resourceVersion } });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

export async function setLabel<T extends Obj<unknown>>(client: KubeClient, r: Resource, o: T, key: string, value: string): Promise<T> {
  if (o.metadata.labels?.[key] === value) return o;
  const { ns, name } = meta(o);
  return client.patch<T>(crPath(r, ns, name), { metadata: { labels: { [key]: value }, resourceVersion: o.metadata.resourceVersion } });
}

/** Writes status only when it changed; returns whether it wrote. */
export async function writeStatus<S>(client: KubeClient, r: Resource, o: Obj<S>, status: S): Promise<boolean> {
  if (statusEqual(o.status ?? {}, status)) return false;
  const { ns, name } = meta(o);
  const updated = await client.patch<Obj<S>>(crPath(r, ns, name, 'status'), { metadata: { resourceVersion: o.metadata.resourceVersion }, status });
  o.metadata.resourceVersion = updated.metadata.resourceVersion;
  o.status = updated.status;
  return true;
}

type StatusWithConditions = { phase?: string; conditions?: Condition[] };

/** The reason of a finished object's Ready condition (what the failures metric counts by). */
export function readyReason(o: Obj<StatusWithConditions>): string | undefined {
  return o.status?.conditions?.find((c) => c.type === ConditionType.Ready)?.reason;
}

/** o's conditions with one set (observedGeneration: o's generation), at ctx.now(). */
export function condition(ctx: Ctx, o: Obj<StatusWithConditions>, type: string, status: 'True' | 'False', reason: string, message: string): Condition[] {
  return setCondition(o.status?.conditions, { type, status, reason, message, observedGeneration: o.metadata.generation }, ctx.now());
}

/** Writes status if it changed, then records the Event of its reason (a rerun that changes nothing records nothing). */
export async function writeStatusWithEvent<S extends StatusWithConditions>(ctx: Ctx, r: Resource, o: Obj<S>, status: S, type: 'Normal' | 'Warning', reason: string): Promise<void> {
  const message = status.conditions?.find((c) => c.reason === reason)?.message ?? reason;
  if (await writeStatus(ctx.client, r, o, status)) await ctx.events.record(o, type, reason, message);
}

/**
 * Failed with a reason: Ready False (and Dispatched False too when it was never dispatched), finishedAt,
 * a Warning Event, counted once.
 */
export async function failWith<S extends StatusWithConditions>(ctx: Ctx, r: Resource, o: Obj<S>, reason: string, message: string): Promise<void> {
  let conditions = condition(ctx, o, ConditionType.Ready, 'False', reason, message);
  if (o.status?.phase !== 'Running' && o.status?.phase !== 'Dispatched') {
    conditions = setCondition(conditions, { type: ConditionType.Dispatched, status: 'False', reason, message, observedGeneration: o.metadata.generation }, ctx.now());
  }
  const status = { ...o.status, phase: 'Failed', finishedAt: ctx.now().toISOString(), observedGeneration: o.metadata.generation, conditions } as unknown as S;
  await writeStatusWithEvent(ctx, r, o, status, 'Warning', reason);
  ctx.metrics.finished(r === 'checkpoints' ? 'checkpoint' : 'restore', o.metadata.uid!, 'failed', reason);
}
