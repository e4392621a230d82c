/**
 * core/v1 Events about our objects, with the same reason as the condition they accompany (so
 * `kubectl describe` and `kubectl get events --field-selector reason=AgentUnavailable` tell one story).
 * Recording an Event is best effort: a failure is logged, never fails the reconcile. The same event
 * again (same object, type, reason and message: a reconcile retried, a deletion seen twice before its
 * finalizer is gone) bumps the first one's count and lastTimestamp, as client-go's recorder does,
 * instead of a second Event.
 */
import { OPERATOR_COMPONENT as COMPONENT } from '../kube';
import type { KubeClient } from './kube/client';
import { eventsPath } from './kube/paths';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

const AGGREGATE_MS = 10 * 60_000;  // client-go's event correlator window
const MAX_REMEMBERED = 4096;

export class EventRecorder {
  private readonly recent = new Map<string, { name: string; count: number; at: number }>();

  constructor(
    private readonly client: KubeClient,
    private readonly log: (msg: string) => void,
  ) {}

  async record(obj: InvolvedObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const ns = obj.metadata.namespace ?? 'default';
    const now = new Date().toISOString();
    const key = JSON.stringify([ns, obj.kind, obj.metadata.name, obj.metadata.uid, type, reason, message]);
    const seen = this.recent.get(key);
    if (seen && Date.now() - seen.at < AGGREGATE_MS) {
      try {
        seen.count++;
        seen.at = Date.now();
        await this.client.patch(`${eventsPath(ns)}/${encodeURIComponent(seen.name)}`, { count: seen.count, lastTimestamp: now });
        return;
      } catch {
        this.recent.delete(key);  // gone (expired, deleted): a new one below
      }
    }
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${obj.metadata.name}.`, namespace: ns },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        namespace: ns,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: COMPONENT },
      reportingComponent: COMPONENT,
      reportingInstance: process.env.POD_NAME ?? COMPONENT,
      action: reason,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      const made = await this.client.create<{ metadata?: { name?: string } }>(eventsPath(ns), event);
      if (made?.metadata?.name) {
        if (this.recent.size >= MAX_REMEMBERED) this.recent.delete(this.recent.keys().next().value!);
        this.recent.set(key, { name: made.metadata.name, count: 1, at: Date.now() });
      }
    } catch (err) {
      this.log(`event ${reason} on ${ns}/${obj.metadata.name}: ${(err as Error).message}`);
    }
  }
}
