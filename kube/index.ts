/**
 * The Kubernetes layer under the operator and the node agent: what both need and neither should write
 * again. Import it as '../kube'; nothing here imports operator/ or node-agent/.
 *
 *   queue.ts       WorkQueue: keyed, deduplicated, one reconcile per key at a time, backoff, requeueAfter
 *   list-watch.ts  ListWatch: list, then watch, forever (any error but 410 backs off and relists), over a
 *                  WatchSource each component implements for its own client
 *   conditions.ts  setCondition (keeps the condition's place), getCondition, statusEqual
 *   constants.ts   labels, annotations, finalizer, condition types, reasons, file names, defaults
 *   process-metrics.ts  prom-client's default metrics, the ones that pass `promtool check metrics`
 */
export { WorkQueue, objectKey, splitKey, type QueueOptions, type ReconcileFn, type ReconcileResult } from './queue';
export { ListWatch, WatchError, isGone, type KubeObject, type ListWatchEventType, type ListWatchOptions, type WatchEventType, type WatchSource } from './list-watch';
export { getCondition, setCondition, statusEqual } from './conditions';
export * from './constants';
export { collectProcessMetrics } from './process-metrics';
