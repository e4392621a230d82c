/**
 * core/v1 Events about our objects, with the same reason as the condition they accompany (so
 * `kubectl describe` and `kubectl get events --field-selector reason=AgentUnavailable` tell one story).
 * Recording an Event is best effort: a failure is logged, never fails the reconcile.
 */
import { OPERATOR_COMPONENT as COMPONENT } from '../kube';
import type { KubeClient } from './kube/client';
import { eventsPath } from './kube/paths';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export class EventRecorder {
  constructor(
    private readonly client: KubeClient,
    private readonly log: (msg: string) => void,
  ) {}

  async record(obj: InvolvedObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const ns = obj.metadata.namespace ?? 'default';
    const now = new Date().toISOString();
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
      await this.client.create(eventsPath(ns), event);
    } catch (err) {
      this.log(`event ${reason} on ${ns}/${obj.metadata.name}: ${(err as Error).message}`);
    }
  }
}
