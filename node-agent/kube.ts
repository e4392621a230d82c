/**
 * The agent's view of the API server, as a small interface (tests of the worker logic use a fake), and its
 * implementation over @kubernetes/client-node. Not-found reads return undefined; a 409 on a status write
 * is a ConflictError (someone else changed the object: the caller drops or re-reads it).
 */
import * as k8s from '@kubernetes/client-node';
import { CHECKPOINT_PLURAL, Checkpoint, GROUP, RESTORE_PLURAL, Restore, VERSION } from '../crds/types';
import { AGENT_COMPONENT } from '../kube';

export class ConflictError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConflictError';
  }
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface EventInput {
  /** The object the Event is about. */
  object: { apiVersion: string; kind: string; metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string } };
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface AgentApi {
  listCustom<T>(plural: string, labelSelector: string): Promise<ListResult<T>>;
  /**
   * Starts a watch that the server ends after timeoutSeconds; onDone is called once, with the error (or
   * null when the server closed it).
   */
  watchCustom<T>(plural: string, labelSelector: string, resourceVersion: string, timeoutSeconds: number, onEvent: (type: WatchEventType, obj: T) => void, onDone: (err: unknown) => void): Promise<{ abort(): void }>;
  getCheckpoint(namespace: string, name: string): Promise<Checkpoint | undefined>;
  /** PUT …/status with the object's resourceVersion; throws ConflictError on 409. */
  replaceCheckpointStatus(cp: Checkpoint): Promise<Checkpoint>;
  getRestore(namespace: string, name: string): Promise<Restore | undefined>;
  /** PUT …/status with the object's resourceVersion; throws ConflictError on 409. */
  replaceRestoreStatus(r: Restore): Promise<Restore>;
  getPod(namespace: string, name: string): Promise<k8s.V1Pod | undefined>;
  createEvent(e: EventInput): Promise<void>;
}

function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

export function loadKubeConfig(kubeconfigPath?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  return kc;
}

export class KubeAgentApi implements AgentApi {
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private readonly watcher: k8s.Watch;

  constructor(kc: k8s.KubeConfig, private readonly source: { component: string; host: string; instance: string }) {
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.watcher = new k8s.Watch(kc);
  }

  async listCustom<T>(plural: string, labelSelector: string): Promise<ListResult<T>> {
    const list = (await this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural, labelSelector })) as {
      items: T[];
      metadata: { resourceVersion: string };
    };
    return { items: list.items, resourceVersion: list.metadata.resourceVersion };
  }

  async watchCustom<T>(
    plural: string,
    labelSelector: string,
    resourceVersion: string,
    timeoutSeconds: number,
    onEvent: (type: WatchEventType, obj: T) => void,
    onDone: (err: unknown) => void,
  ): Promise<{ abort(): void }> {
    const ctl = await this.watcher.watch(
      `/apis/${GROUP}/${VERSION}/${plural}`,
      { labelSelector, resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
      (type: string, obj: T) => onEvent(type as WatchEventType, obj),
      onDone,
    );
    return { abort: () => ctl.abort() };
  }

  async getCheckpoint(namespace: string, name: string): Promise<Checkpoint | undefined> {
    return this.getCustom<Checkpoint>(CHECKPOINT_PLURAL, namespace, name);
  }

  async replaceCheckpointStatus(cp: Checkpoint): Promise<Checkpoint> {
    return this.replaceStatus(CHECKPOINT_PLURAL, 'checkpoint', cp);
  }

  async getRestore(namespace: string, name: string): Promise<Restore | undefined> {
    return this.getCustom<Restore>(RESTORE_PLURAL, namespace, name);
  }

  async replaceRestoreStatus(r: Restore): Promise<Restore> {
    return this.replaceStatus(RESTORE_PLURAL, 'restore', r);
  }

  private async getCustom<T>(plural: string, namespace: string, name: string): Promise<T | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name })) as T;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  private async replaceStatus<T extends { metadata: { namespace?: string; name?: string; resourceVersion?: string } }>(plural: string, kind: string, obj: T): Promise<T> {
    const { namespace, name } = obj.metadata;
    try {
      return (await this.custom.replaceNamespacedCustomObjectStatus({
        group: GROUP,
        version: VERSION,
        namespace: namespace as string,
        plural,
        name: name as string,
        body: obj,
        fieldManager: AGENT_COMPONENT,
      })) as T;
    } catch (err) {
      if (statusCode(err) === 409) throw new ConflictError(`${kind} ${namespace}/${name} changed (resourceVersion ${obj.metadata.resourceVersion} is stale)`, { cause: err });
      throw err;
    }
  }

  async getPod(namespace: string, name: string): Promise<k8s.V1Pod | undefined> {
    try {
      return await this.core.readNamespacedPod({ namespace, name });
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  async createEvent(e: EventInput): Promise<void> {
    const now = new Date();
    const ns = e.object.metadata.namespace as string;
    await this.core.createNamespacedEvent({
      namespace: ns,
      body: {
        metadata: { generateName: `${e.object.metadata.name}.`, namespace: ns },
        involvedObject: {
          apiVersion: e.object.apiVersion,
          kind: e.object.kind,
          name: e.object.metadata.name,
          namespace: ns,
          uid: e.object.metadata.uid,
          resourceVersion: e.object.metadata.resourceVersion,
        },
        type: e.type,
        reason: e.reason,
        message: e.message.slice(0, 1024),
        source: { component: this.source.component, host: this.source.host },
        reportingComponent: `cryopod.io/${this.source.component}`,
        reportingInstance: this.source.instance.slice(0, 128),
        firstTimestamp: now,
        lastTimestamp: now,
        eventTime: undefined,
        count: 1,
      },
    });
  }
}
