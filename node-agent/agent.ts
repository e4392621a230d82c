/**
 * The node agent, wired: freeze journal recovery first (no pod stays frozen because an earlier agent
 * died), then list+watch of the work labelled for this node into a keyed queue, the checkpoint worker, and
 * the restore worker, and the /metrics + /healthz server. stop() stops taking work and lets the work in flight finish (its cgroup
 * thawed, its status written); anything cut shorter than that is recovered by the next start.
 */
import * as http from 'http';
import * as path from 'path';
import { CHECKPOINT_PLURAL, RESTORE_PLURAL } from '../crds/types';
import { AGENT_COMPONENT, ListWatch, NODE_LABEL, WorkQueue, objectKey } from '../kube';
import { CgroupMounts, readCgroupMounts } from './cgroup-mounts';
import { CheckpointWorker } from './checkpoint-worker';
import { AgentConfig } from './config';
import { DumpFn, Dumper, TestHooks as DumperHooks } from './dumper';
import { FreezeJournal } from './freeze-journal';
import { startHttpServer } from './http-server';
import { AgentIdentity, makeIdentity } from './identity';
import { AgentApi, KubeAgentApi, loadKubeConfig } from './kube';
import { AgentMetrics } from './metrics';
import { ReadImagesFn, RestoreFn, RestoreHooks, RestoreWorker } from './restore-worker';
import { ImageStore } from './storage';
import { remoteStoreFrom } from './remote-store';
import { UploadJournal } from './upload-journal';
import { customResourceSource } from './watch-source';

export interface AgentOverrides {
  api?: AgentApi;
  dump?: DumpFn;
  restore?: RestoreFn;
  readImages?: ReadImagesFn;
  mounts?: CgroupMounts;
  log?: (msg: string) => void;
  /** Tests only: stand-ins for an agent that dies mid-dump (dumper.ts); never set by main.ts. */
  dumperHooks?: DumperHooks;
  /** Tests only: the restore's stepping hook (restore-worker.ts), to kill the agent mid-restore. */
  restoreHooks?: RestoreHooks;
}

/** One watched kind of work: its plural and the handler of one key (each kind has its own queue). */
interface WorkKind {
  plural: string;
  handle(key: string): Promise<void>;
}

export class Agent {
  readonly identity: AgentIdentity;
  readonly metrics: AgentMetrics;
  private readonly log: (msg: string) => void;
  private readonly watchers: ListWatch[] = [];
  private readonly queues: WorkQueue[] = [];
  private server?: http.Server & { port: number };

  constructor(private readonly cfg: AgentConfig, private readonly overrides: AgentOverrides = {}) {
    this.identity = makeIdentity(cfg.nodeName, cfg.podName);
    this.metrics = new AgentMetrics(cfg.nodeName);
    this.log = overrides.log ?? ((m) => console.log(`${new Date().toISOString()} agent ${this.identity.id}: ${m}`));
  }

  get port(): number | undefined {
    return this.server?.port;
  }

  /** True once every watcher has listed its work once. */
  ready(): boolean {
    return this.watchers.length > 0 && this.watchers.every((w) => w.synced);
  }

  async start(): Promise<void> {
    const cfg = this.cfg;
    const mounts = this.overrides.mounts ?? readCgroupMounts();
    const journal = new FreezeJournal(path.join(cfg.stateDir, cfg.nodeName), mounts);
    await journal.recover(this.log);

    const api = this.overrides.api ?? new KubeAgentApi(loadKubeConfig(cfg.kubeconfig), { component: AGENT_COMPONENT, host: cfg.nodeName, instance: this.identity.id });
    const dumper = new Dumper(journal, cfg.freezeMode, this.overrides.dump, this.overrides.dumperHooks);
    const store = new ImageStore(cfg.storageRoot);
    const remote = remoteStoreFrom(cfg);
    const uploads = new UploadJournal(path.join(cfg.stateDir, cfg.nodeName));
    const checkpoints = new CheckpointWorker({ api, identity: this.identity, store, remote, uploads, dumper, mounts, metrics: this.metrics, log: this.log });
    const restores = new RestoreWorker({ api, identity: this.identity, store, remote, mounts, metrics: this.metrics, log: this.log, restore: this.overrides.restore, readImages: this.overrides.readImages, hooks: this.overrides.restoreHooks });
    const kinds: WorkKind[] = [
      { plural: CHECKPOINT_PLURAL, handle: (k) => checkpoints.handle(k) },
      { plural: RESTORE_PLURAL, handle: (k) => restores.handle(k) },
    ];

    this.server = await startHttpServer(cfg.port, cfg.bind, this.metrics.registry, () => this.ready());
    for (const kind of kinds) {
      const queue = new WorkQueue((k) => kind.handle(k), {
        concurrency: cfg.concurrency,
        minBackoffMs: 200,
        maxBackoffMs: 60000,
        onError: (key, err, ms) => this.log(`${kind.plural} ${key}: ${(err as Error).message?.split('\n')[0]}; retrying in ${ms} ms`),
      });
      const watcher = new ListWatch({
        source: customResourceSource(api, kind.plural, `${NODE_LABEL}=${cfg.nodeName}`),
        onEvent: (_type, obj) => {
          const key = objectKey(obj);
          if (key) queue.add(key);
        },
        log: this.log,
        minBackoffMs: 250,
        maxBackoffMs: 30000,
      });
      this.queues.push(queue);
      this.watchers.push(watcher);
      watcher.start();
    }
    this.log(`started: node ${cfg.nodeName}, storage ${cfg.storageRoot}${remote ? `, image store ${remote.store.url}${remote.signingKey ? ' (signing)' : ' (UNSIGNED: no signing key)'}` : ''}, freeze mode ${cfg.freezeMode}, metrics on :${this.server.port}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.watchers.map((w) => w.stop()));
    await Promise.all(this.queues.map((q) => q.shutdown()));
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.log('stopped');
  }
}
