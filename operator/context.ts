/** What every reconciler needs, passed in (no globals), so a test can run two operators in one process. */
import type { OperatorConfig } from './config';
import type { EventRecorder } from './events';
import type { KubeClient } from './kube/client';
import type { OperatorMetrics } from './metrics';
import type { ImageLocations } from './image-locations';

export interface TestHooks {
  /**
   * Runs between the node label patch and the status write of a dispatch: the one place where a crash leaves
   * half-done work. Tests use it to stop the operator there and check the next one finishes the job once.
   */
  afterDispatchLabel?(kind: 'Checkpoint' | 'Restore', key: string): Promise<void>;
  /**
   * After every reconcile of a key, whatever its outcome, with the time it started: what a test waits on
   * to know the operator has looked at an object since some change (instead of sleeping).
   */
  reconciled?(kind: 'checkpoint' | 'restore', key: string, startedAt: number): void;
}

export interface Ctx {
  client: KubeClient;
  cfg: OperatorConfig;
  store: ImageLocations;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log(msg: string): void;
  now(): Date;
  hooks?: TestHooks;
}

/** Milliseconds from now until an ISO time plus some seconds (negative when past). */
export function msUntil(now: Date, iso: string | undefined, plusSeconds: number): number {
  if (!iso) return 0;
  return Date.parse(iso) + plusSeconds * 1000 - now.getTime();
}
