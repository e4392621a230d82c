/**
 * Reconciles one Checkpoint dispatched to this node (the queue calls handle(key) for "namespace/name"):
 *
 *   get ─► not ours / finished ─► done
 *       ─► Dispatched ─► claim (PUT status, resourceVersion; 409 = someone else won: drop)
 *                         ─► pod ─► containers ─► PIDs ─► preflight (nothing frozen; refused: Failed Unsupported)
 *                         ─► free space for the images (nothing frozen; short: Failed InsufficientStorage)
 *                         ─► pod.json ─► dump each ─► Succeeded | Failed
 *       ─► Running, claimed by an earlier instance of this agent
 *            ─► it was uploading (upload-journal.ts) ─► upload again (files stored whole are skipped) ─► Succeeded
 *            ─► otherwise ─► recovery.ts ─► Failed AgentRestarted
 *
 * Final statuses are written with retry-on-conflict, but only while the object is still Running under
 * our claim (the operator may have failed it meanwhile, e.g. on a timeout: then our result is dropped and
 * its images removed). A result whose status write failed for another reason is kept in memory and
 * written on the next attempt, so a finished dump is never done twice by this instance.
 */
import * as fs from 'node:fs';
import type { V1Pod } from '@kubernetes/client-node';
import { API_VERSION, Checkpoint, ContainerResult } from '../crds/types';
import { ConditionType, getCondition, Reason, splitKey } from '../kube';
import { CgroupMounts } from './cgroup-mounts';
import { Dumper } from './dumper';
import { AgentIdentity } from './identity';
import { routeClaimedWork, writeFinalStatus } from './claimed-work';
import { AgentApi, ConflictError } from './kube';
import { AgentMetrics } from './metrics';
import { savedPod, selectContainers } from './pod-containers';
import { preflightContainers } from './preflight';
import { PROC } from './procfs';
import { makePodSafe, recoveryMessage } from './recovery';
import { recheckMembership, resolveContainers } from './resolve';
import { checkSpace } from './space-check';
import { claimed, failed, succeeded, SuccessResult } from './status';
import { ImageStore, refOf } from './storage';
import { storeKey, upload, type RemoteStore } from './remote-store';
import type { Progress } from '../store';
import { UploadJournal, type DumpedResult } from './upload-journal';
import { WorkError, describeError } from './work-error';

export interface WorkerDeps {
  api: AgentApi;
  identity: AgentIdentity;
  store: ImageStore;
  /** The image store checkpoints are published to (--store-url); none: they stay in `store`'s directory. */
  remote?: RemoteStore;
  /** Where a started upload is recorded, so that the next agent finishes it if this one dies (none: it fails instead). */
  uploads?: UploadJournal;
  dumper: Dumper;
  mounts: CgroupMounts;
  metrics: AgentMetrics;
  log: (msg: string) => void;
  proc?: string;
  now?: () => Date;
}

type Outcome = { kind: 'succeeded'; result: SuccessResult } | { kind: 'failed'; reason: string; message: string };

export class CheckpointWorker {
  /** Finished work whose final status is not written yet. */
  private readonly unwritten = new Map<string, Outcome>();
  private readonly now: () => Date;

  constructor(private readonly d: WorkerDeps) {
    this.now = d.now ?? (() => new Date());
  }

  async handle(key: string): Promise<void> {
    const [namespace, name] = splitKey(key);
    const cp = await this.d.api.getCheckpoint(namespace, name);
    await routeClaimedWork(key, cp ?? undefined, this.d.identity, this.unwritten, {
      finish: (obj, outcome) => this.finish(obj, outcome),
      claimAndRun: (k, obj) => this.claimAndRun(k, obj),
      recover: (obj) => this.recover(obj),
    });
  }

  private async claimAndRun(key: string, cp: Checkpoint): Promise<void> {
    let mine: Checkpoint;
    try {
      mine = await this.d.api.replaceCheckpointStatus(claimed(cp, this.d.identity.id, this.now()));
    } catch (err) {
      if (err instanceof ConflictError) {
        this.d.log(`${key}: claim lost (409): someone else changed it first; dropping`);
        return;
      }
      throw err;
    }
    this.d.log(`${key}: claimed as ${this.d.identity.id}`);
    const outcome = await this.run(mine);
    this.unwritten.set(key, outcome);
    await this.finish(mine, outcome);
  }

  /** Does the work. Never throws: every failure becomes a Failed outcome, and the images are removed. */
  private async run(cp: Checkpoint): Promise<Outcome> {
    const ns = cp.metadata.namespace as string;
    try {
      const pod = await this.d.api.getPod(ns, cp.spec.podName);
      if (!pod) return { kind: 'failed', reason: Reason.PodNotFound, message: `pod ${ns}/${cp.spec.podName} not found` };
      const want = cp.status?.podUID;
      if (want && pod.metadata?.uid !== want) {
        return { kind: 'failed', reason: Reason.PodNotFound, message: `pod ${ns}/${cp.spec.podName} with UID ${want} not found (a pod of that name has UID ${pod.metadata?.uid})` };
      }
      if (pod.spec?.nodeName !== this.d.identity.nodeName) {
        return { kind: 'failed', reason: Reason.PodNotScheduled, message: `pod ${ns}/${cp.spec.podName} runs on node ${pod.spec?.nodeName ?? '(none)'}, not ${this.d.identity.nodeName}` };
      }
      return { kind: 'succeeded', result: await this.dumpPod(cp, pod) };
    } catch (err) {
      this.d.store.remove(refOf(cp.metadata));
      this.d.uploads?.forget(cp.metadata.uid ?? '');
      if (err instanceof WorkError) return { kind: 'failed', reason: err.reason, message: err.message };
      const e = describeError(err);
      return { kind: 'failed', reason: Reason.DumpFailed, message: e.code ? `${e.code}: ${e.message}` : e.message };
    }
  }

  private async dumpPod(cp: Checkpoint, pod: V1Pod): Promise<SuccessResult> {
    const ref = refOf(cp.metadata);
    const uid = pod.metadata?.uid as string;
    const containers = resolveContainers(uid, selectContainers(pod, cp.spec.containers), this.d.mounts, this.d.proc ?? PROC);
    // Every container is checked before the first is journalled or frozen: a refusal pauses nothing.
    await preflightContainers(containers);
    // A directory left by an earlier attempt is ours to replace: the claim made this work ours alone.
    this.d.store.remove(ref);
    // Room for the images, before anything is frozen (space-check.ts): a refusal pauses nothing.
    checkSpace(this.d.store.root, containers.map((c) => ({ container: c.name, pids: c.pids })), this.d.proc ?? PROC);
    this.d.store.writePodJson(ref, savedPod(pod));
    const results: ContainerResult[] = [];
    let frozen = 0;
    let dumping = 0;
    for (const c of containers) {
      const dir = this.d.store.mkdir(this.d.store.containerDir(ref, c.name));
      const out = await this.d.dumper.run({
        pid: c.mainPid,
        dir,
        leaveRunning: cp.spec.leaveRunning ?? true,
        freezer: c.freezer,
        recheck: () => recheckMembership(c, uid, this.d.proc ?? PROC),
      });
      results.push({ name: c.name, containerID: c.containerID, pids: [c.mainPid], pages: out.pages, bytes: out.bytes });
      frozen += out.frozenSeconds;
      dumping += out.dumpSeconds;
    }
    const dir = this.d.store.checkpointDir(ref);
    const dumped: DumpedResult = {
      containers: results,
      durations: { freezeSeconds: round(frozen), dumpSeconds: round(dumping), uploadSeconds: 0 },
      freezeDuration: durationString(frozen),
      imageSizeBytes: this.d.store.sizeOf(dir),
    };
    if (!this.d.remote) return { ...dumped, imageLocation: `file://${dir}` };
    // From here on the dump is whole on this node: an agent that dies now leaves it to the next (recover).
    this.d.uploads?.record(cp.metadata.uid as string, { claim: cp.status?.claimedBy as string, result: dumped });
    return this.publish(cp, dumped, cp.status?.claimedBy as string);
  }

  /** Uploads the node's copy of a finished dump, removes it once confirmed, and gives the result its location. */
  private async publish(cp: Checkpoint, dumped: DumpedResult, claim: string): Promise<SuccessResult> {
    const remote = this.d.remote as RemoteStore;
    const ref = refOf(cp.metadata);
    let up;
    try {
      up = await upload(remote, ref, this.d.store.checkpointDir(ref), (p) => void this.reportTransfer(cp, p, claim));
    } catch (err) {
      throw new WorkError(Reason.UploadFailed, `upload to ${remote.store.url}: ${(err as Error).message}`);
    }
    // Confirmed in the store: the node's copy goes (Succeeded is written only after this point).
    this.d.store.remove(ref);
    return { ...dumped, durations: { ...dumped.durations, uploadSeconds: round(up.seconds) }, imageLocation: up.url };
  }

  /** Upload progress into status.transfer: best effort (a conflict or an error skips one report). */
  private async reportTransfer(cp: Checkpoint, p: Progress, claim: string): Promise<void> {
    try {
      const current = await this.d.api.getCheckpoint(cp.metadata.namespace as string, cp.metadata.name as string);
      if (!current || current.status?.phase !== 'Running' || current.status.claimedBy !== claim) return;
      await this.d.api.replaceCheckpointStatus({ ...current, status: { ...current.status, transfer: { doneBytes: p.doneBytes, totalBytes: p.totalBytes } } });
    } catch (err) {
      this.d.log(`${cp.metadata.namespace}/${cp.metadata.name}: upload progress not written: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  private async recover(cp: Checkpoint): Promise<void> {
    const ns = cp.metadata.namespace as string;
    const previous = cp.status?.claimedBy as string;
    const pending = this.d.uploads?.read(cp.metadata.uid as string);
    if (pending && pending.claim === previous && this.d.remote) return this.resumeUpload(cp, pending.result, previous);
    const found = await this.d.api.getPod(ns, cp.spec.podName);
    const pod = cp.status?.podUID && found?.metadata?.uid !== cp.status.podUID ? undefined : found;
    const safe = await makePodSafe(pod, cp.spec.containers, this.d.mounts, this.d.proc ?? PROC);
    this.d.store.remove(refOf(cp.metadata));
    const outcome: Outcome = { kind: 'failed', reason: Reason.AgentRestarted, message: recoveryMessage(previous, safe) };
    this.d.log(`${ns}/${cp.metadata.name}: recovered work of ${previous}: ${outcome.message}`);
    // Writing under the earlier claim: conditional on the resourceVersion we read, like a claim.
    await this.finish(cp, outcome, previous);
  }

  /**
   * The earlier agent died while uploading a finished dump: upload it again (the store skips what it has
   * whole) and finish the work under that agent's claim. If the store has it complete already, the upload
   * was confirmed and only the status was not written.
   */
  private async resumeUpload(cp: Checkpoint, dumped: DumpedResult, previous: string): Promise<void> {
    const key = `${cp.metadata.namespace}/${cp.metadata.name}`;
    const ref = refOf(cp.metadata);
    const remote = this.d.remote as RemoteStore;
    this.d.log(`${key}: ${previous} died while uploading; finishing its upload`);
    let outcome: Outcome;
    try {
      let result: SuccessResult;
      if (await remote.store.exists(storeKey(ref))) {
        // Published whole before the agent died (or by an earlier resume whose status write failed).
        this.d.store.remove(ref);
        result = { ...dumped, imageLocation: remote.store.urlOf(storeKey(ref)) };
      } else if (fs.existsSync(this.d.store.checkpointDir(ref))) {
        result = await this.publish(cp, dumped, previous);
      } else {
        throw new WorkError(Reason.AgentRestarted, `the agent restarted while uploading this checkpoint (claimed by ${previous}), and neither the node's copy nor a complete upload is left: create a new Checkpoint`);
      }
      outcome = { kind: 'succeeded', result };
    } catch (err) {
      this.d.store.remove(ref);
      const e = err instanceof WorkError ? err : new WorkError(Reason.UploadFailed, (err as Error).message);
      outcome = { kind: 'failed', reason: e.reason, message: e.message };
    }
    this.unwritten.set(key, outcome);
    await this.finish(cp, outcome, previous);
  }

  /** Writes the final status while the object is still Running under `claim`; records metrics and an Event. */
  private async finish(cp: Checkpoint, outcome: Outcome, claim = this.d.identity.id): Promise<void> {
    const key = `${cp.metadata.namespace}/${cp.metadata.name}`;
    const w = await writeFinalStatus(cp, {
      claim,
      withResult: (current) => (outcome.kind === 'succeeded' ? succeeded(current, outcome.result, this.now()) : failed(current, outcome.reason, outcome.message, this.now())),
      replaceStatus: (next) => this.d.api.replaceCheckpointStatus(next),
      reread: async (current) => (await this.d.api.getCheckpoint(current.metadata.namespace as string, current.metadata.name as string)) ?? undefined,
    });
    this.unwritten.delete(key);
    this.d.uploads?.forget(cp.metadata.uid ?? '');
    if (w.kind === 'notOurs') {
      this.d.log(`${key}: no longer Running under our claim (phase ${w.obj.status?.phase}); result dropped`);
      if (outcome.kind === 'succeeded') {
        this.d.store.remove(refOf(w.obj.metadata));
        const remote = this.d.remote;
        remote?.store.remove(storeKey(refOf(w.obj.metadata))).catch((err: Error) => this.d.log(`${key}: dropped result's images not removed from ${remote.store.url}: ${err.message}`));
      }
    }
    if (w.kind === 'written') this.record(w.obj, outcome);
  }

  private record(cp: Checkpoint, outcome: Outcome): void {
    const m = this.d.metrics;
    const key = `${cp.metadata.namespace}/${cp.metadata.name}`;
    if (outcome.kind === 'succeeded') {
      const r = outcome.result;
      m.freezeSeconds.observe(r.durations.freezeSeconds ?? 0);
      m.dumpSeconds.observe(r.durations.dumpSeconds ?? 0);
      m.uploadSeconds.observe(r.durations.uploadSeconds ?? 0);
      m.checkpointBytes.inc(r.imageSizeBytes);
      m.checkpointPages.inc(r.containers.reduce((n, c) => n + c.pages, 0));
      m.checkpoints.inc({ result: 'succeeded' });
    } else {
      m.checkpoints.inc({ result: 'failed' });
    }
    const reason = outcome.kind === 'succeeded' ? Reason.Succeeded : outcome.reason;
    const message = outcome.kind === 'succeeded' ? (getCondition(cp.status?.conditions, ConditionType.Ready)?.message ?? 'checkpointed') : outcome.message;
    this.d.log(`${key}: ${outcome.kind} (${reason}): ${message}`);
    this.d.api
      .createEvent({
        object: { apiVersion: API_VERSION, kind: 'Checkpoint', metadata: cp.metadata },
        type: outcome.kind === 'succeeded' ? 'Normal' : 'Warning',
        reason,
        message,
      })
      .catch((err: Error) => this.d.log(`${key}: could not record the Event: ${err.message.split('\n')[0]}`));
  }
}

function round(s: number): number {
  return Math.round(s * 1e6) / 1e6;
}

/** A Kubernetes-style duration string: "850us", "23ms", "1.5s". */
export function durationString(seconds: number): string {
  if (seconds < 0.001) return `${Math.round(seconds * 1e6)}us`;
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  return `${Number(seconds.toFixed(3))}s`;
}
