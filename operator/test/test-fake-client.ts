/**
 * An in-memory stand-in for the KubeClient calls the reconcilers make (get, create, patch, delete), for unit
 * tests of their logic; operator/test/*.test.ts run the same reconcilers against a real API server. It keeps
 * what the reconcilers rely on: 404 and 409 (AlreadyExists, and a stale resourceVersion in a patch), merge
 * patches, the status subresource, a resourceVersion bumped on every write, and finalizers holding a delete.
 */
import type { ReconcileResult } from '../../kube';
import { DEFAULTS, type OperatorConfig } from '../config';
import type { Ctx } from '../context';
import { EventRecorder } from '../events';
import { ApiError, type KubeClient } from '../kube/client';
import { OperatorMetrics } from '../metrics';
import type { ImageStore } from '../storage';

type Obj = { metadata: Record<string, unknown> & { name?: string; resourceVersion?: string; finalizers?: string[] }; status?: unknown } & Record<string, unknown>;

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

export class FakeClient {
  /** Objects by their path (…/namespaces/NS/KIND/NAME). */
  readonly objects = new Map<string, Obj>();
  /** Every write, in order ("PATCH path" …): a rerun that changes nothing adds none. */
  readonly writes: string[] = [];
  private rv = 0;
  private uids = 0;

  constructor(private readonly now: () => Date) {}

  /** The client as the reconcilers' Ctx wants it. */
  get asClient(): KubeClient {
    return this as unknown as KubeClient;
  }

  /** Puts an object in as the test sets it up (not counted as a write). */
  seed<T>(collection: string, obj: T): T {
    const o = clone(obj) as unknown as Obj;
    o.metadata = { uid: `uid-${++this.uids}`, creationTimestamp: this.now().toISOString(), generation: 1, ...o.metadata, resourceVersion: String(++this.rv) };
    this.objects.set(`${collection}/${o.metadata.name}`, o);
    return clone(o) as unknown as T;
  }

  async get<T>(path: string): Promise<T> {
    const [p] = path.split('?');
    const o = this.objects.get(p);
    if (o) return clone(o) as unknown as T;
    const items = [...this.objects.entries()].filter(([k]) => k.startsWith(`${p}/`) && !k.slice(p.length + 1).includes('/')).map(([, v]) => clone(v));
    if (items.length || /\/(checkpoints|restores|pods|events)$/.test(p)) return { items } as unknown as T;
    throw new ApiError('GET', path, 404, 'NotFound', { message: `${path} not found` });
  }

  async create<T>(path: string, body: unknown): Promise<T> {
    const o = clone(body) as Obj;
    const name = o.metadata.name ?? `${(o.metadata.generateName as string | undefined) ?? 'obj-'}${this.uids + 1}`;
    if (this.objects.has(`${path}/${name}`)) throw new ApiError('POST', path, 409, 'AlreadyExists', { message: `${name} already exists` });
    this.writes.push(`POST ${path}`);
    return this.seed(path, { ...o, metadata: { ...o.metadata, name } }) as unknown as T;
  }

  async patch<T>(path: string, body: unknown): Promise<T> {
    const status = path.endsWith('/status');
    const p = status ? path.slice(0, -'/status'.length) : path;
    const o = this.objects.get(p);
    if (!o) throw new ApiError('PATCH', path, 404, 'NotFound', { message: `${p} not found` });
    const b = body as { metadata?: { resourceVersion?: string }; status?: unknown };
    const want = b.metadata?.resourceVersion;
    if (want !== undefined && want !== o.metadata.resourceVersion) throw new ApiError('PATCH', path, 409, 'Conflict', { message: `resourceVersion ${want} is stale` });
    const { resourceVersion: _ignored, ...meta } = b.metadata ?? {};
    const next = (status ? { ...o, status: mergePatch(o.status, b.status) } : mergePatch(o, { ...b, metadata: meta, status: undefined })) as Obj;
    if (!status) next.status = o.status;
    next.metadata.resourceVersion = String(++this.rv);
    this.objects.set(p, next);
    this.writes.push(`PATCH ${path}`);
    if (next.metadata.deletionTimestamp && !next.metadata.finalizers?.length) this.objects.delete(p);
    return clone(next) as unknown as T;
  }

  async delete<T>(path: string, body?: unknown): Promise<T> {
    const o = this.objects.get(path);
    if (!o) throw new ApiError('DELETE', path, 404, 'NotFound', { message: `${path} not found` });
    const uid = (body as { preconditions?: { uid?: string } } | undefined)?.preconditions?.uid;
    if (uid && uid !== o.metadata.uid) throw new ApiError('DELETE', path, 409, 'Conflict', { message: 'uid precondition failed' });
    this.writes.push(`DELETE ${path}`);
    if (o.metadata.finalizers?.length) {
      o.metadata.deletionTimestamp = this.now().toISOString();
      o.metadata.resourceVersion = String(++this.rv);
    } else this.objects.delete(path);
    return {} as T;
  }

  /** The reasons of the Events recorded about an object, in order. */
  eventReasons(namespace: string, name: string): string[] {
    return [...this.objects.entries()]
      .filter(([k, v]) => k.startsWith(`/api/v1/namespaces/${namespace}/events/`) && (v.involvedObject as { name?: string }).name === name)
      .map(([, v]) => v.reason as string);
  }
}

/** A Ctx over a FakeClient with a clock the test moves (reconcileN moves it to each requested look). */
export function fakeCtx(cfg: Partial<OperatorConfig> = {}, store: Partial<ImageStore> = {}) {
  const clock = { now: Date.parse('2025-06-01T12:00:00Z') };
  const now = () => new Date(clock.now);
  const fake = new FakeClient(now);
  const logs: string[] = [];
  const log = (m: string) => void logs.push(m);
  const ctx: Ctx = {
    client: fake.asClient,
    cfg: { ...DEFAULTS, storageRoot: '/nonexistent', agentClaimTimeoutSeconds: 30, pollSeconds: 5, ...cfg },
    store: store as ImageStore,
    events: new EventRecorder(fake.asClient, log),
    metrics: new OperatorMetrics(false),
    log,
    now,
  };
  return { ctx, fake, clock, logs };
}

/**
 * Runs reconcile(key) up to n times, like the queue would with nothing else happening: after each run the
 * clock moves to the look it asked for (requeueAfterMs); it stops early when a run asks for none. Returns
 * what each run asked for.
 */
export async function reconcileN(reconciler: { reconcile(key: string): Promise<ReconcileResult | void> }, key: string, n: number, clock: { now: number }): Promise<Array<number | undefined>> {
  const asked: Array<number | undefined> = [];
  for (let i = 0; i < n; i++) {
    const r = await reconciler.reconcile(key);
    asked.push(r?.requeueAfterMs);
    if (r?.requeueAfterMs === undefined) break;
    clock.now += r.requeueAfterMs;
  }
  return asked;
}
