/**
 * Reconciles one Restore dispatched to this node (the queue calls handle(key) for "namespace/name"):
 *
 *   get ─► not ours / finished ─► done
 *       ─► Dispatched ─► claim (PUT status Running + claimedBy, resourceVersion; 409: someone else won: drop)
 *            ─► Checkpoint (same namespace, Succeeded, images in this checkpoint's directory of the store;
 *               from an image store: downloaded and its seal verified first, progress in status.transfer)
 *            ─► restore pod (status.podName, owned by this Restore, on this node)
 *            ─► wait for every app container to run a waiting cryopod-stub (until the Restore's deadline)
 *            ─► read + verify every container's metadata images (checkpoint readVerified: sha256 of every
 *               file but the pages images, whose sizes are checked), all of them before any stub is
 *               touched: a corrupt one fails the Restore (ImageCorrupt), stubs intact
 *            ─► per container: re-check the stub, morph it through the checkpoint library, the one restore
 *               path the CLI takes too (restoreVerified with stubPid: a tree for a container of several
 *               processes, which come back with the IDs they had in their PID namespace, inside the
 *               stub's). The native fill hashes each pages image as it writes it, from the one fd it
 *               opened: a tampered pages image fails the Restore (ImageCorrupt) and its stub is killed
 *               before the saved task runs an instruction. No uid/gid: the morphed processes keep the
 *               stub's credentials, namespaces and cgroup (its container's)
 *            ─► Succeeded (durations, Ready, Event) | Failed + reason (Event)
 *       ─► Running, claimed by an earlier instance on this node ─► every stub untouched (or none started):
 *            claimed again and run; else Failed AgentRestarted (not retried), naming what is left
 *
 * Final statuses are written only while the Restore is still Running under our claim (the operator may
 * have failed it on its timeout), with retry on conflict; a result whose write failed is kept and written
 * on the next attempt, so no stub is morphed twice by this instance.
 */
import * as path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { API_VERSION, Restore } from '../crds/types';
import { ConditionType, DEFAULT_TIMEOUT_SECONDS, getCondition, Reason, splitKey } from '../kube';
import { phaseStep, readVerified, restoreVerified } from '../checkpoint';
import type { VerifiedCheckpoint } from '../checkpoint';
import { ImageError } from '../images';
import { CgroupMounts } from './cgroup-mounts';
import { AgentIdentity } from './identity';
import { routeClaimedWork, writeFinalStatus } from './claimed-work';
import { AgentApi, ConflictError } from './kube';
import { AgentMetrics } from './metrics';
import { PROC, readStartTime } from './procfs';
import { recheckMembership } from './resolve';
import { restoreClaimed, restoreFailed, RestoreResult, restoreSucceeded } from './restore-status';
import { CheckpointRef, ImageStore, refOf } from './storage';
import { download, storeKey, type RemoteStore } from './remote-store';
import { SealError } from '../images/seal-verify';
import { isStoreError, type Progress } from '../store';
import { exeOf, findStubs, isStubExe, ReadyStub, untouchedStubProblem } from './stub-wait';
import { WorkError, describeError } from './work-error';

/** One container's images, metadata verified, with the digests its pages are verified against when filled. */
export type ContainerImages = VerifiedCheckpoint;
/** What the agent calls to morph a stub: the checkpoint library's restoreVerified, or a fake in unit tests. */
export type RestoreFn = (opts: { image: ContainerImages; stubPid: number; phaseFd?: number }) => Promise<number>;
export type ReadImagesFn = (dir: string) => Promise<ContainerImages>;

export interface RestoreWorkerDeps {
  api: AgentApi;
  identity: AgentIdentity;
  store: ImageStore;
  /** The image store checkpoints are published to (--store-url): restores download from it. */
  remote?: RemoteStore;
  mounts: CgroupMounts;
  metrics: AgentMetrics;
  log: (msg: string) => void;
  restore?: RestoreFn;
  readImages?: ReadImagesFn;
  proc?: string;
  now?: () => Date;
  /** How often the restore pod is looked at while its stubs start (default 250 ms). */
  pollMs?: number;
  /** Tests only (never set by main.ts): the restore's stepping hook, to kill the agent at a phase. */
  hooks?: RestoreHooks;
}

export interface RestoreHooks {
  /**
   * The restore's phases to this fd, each waiting for a byte (checkpoint/phase.ts): morph (images
   * verified, no stub touched yet), the native core's seize, memory and release (per stub), restored
   * (every stub let go, the result not yet written).
   */
  phaseFd?: number;
}

type Outcome = { kind: 'succeeded'; result: RestoreResult } | { kind: 'failed'; reason: string; message: string };

/** Stop waiting this long before the operator's deadline, so the agent's clearer reason is the one written. */
const DEADLINE_MARGIN_MS = 2000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const checkpointRestore: RestoreFn = ({ image, stubPid, phaseFd }) => restoreVerified(image, { stubPid, ...(phaseFd !== undefined ? { phaseFd } : {}) });

/** A pages image that did not match the manifest, found by the fill (an ImageError ECHECKSUM naming it). */
function isCorruptImage(err: unknown): boolean {
  return err instanceof ImageError && err.code === 'ECHECKSUM';
}

export class RestoreWorker {
  private readonly unwritten = new Map<string, Outcome>();
  private readonly now: () => Date;
  private readonly proc: string;

  constructor(private readonly d: RestoreWorkerDeps) {
    this.now = d.now ?? (() => new Date());
    this.proc = d.proc ?? PROC;
  }

  async handle(key: string): Promise<void> {
    const [namespace, name] = splitKey(key);
    const r = await this.d.api.getRestore(namespace, name);
    await routeClaimedWork(key, r ?? undefined, this.d.identity, this.unwritten, {
      finish: (obj, outcome) => this.finish(obj, outcome),
      claimAndRun: (k, obj) => this.claimAndRun(k, obj),
      recover: (obj) => this.recover(obj),
    });
  }

  private async claimAndRun(key: string, r: Restore): Promise<void> {
    let mine: Restore;
    try {
      mine = await this.d.api.replaceRestoreStatus(restoreClaimed(r, this.d.identity.id, this.now()));
    } catch (err) {
      if (err instanceof ConflictError) {
        this.d.log(`restore ${key}: claim lost (409): someone else changed it first; dropping`);
        return;
      }
      throw err;
    }
    this.d.log(`restore ${key}: claimed as ${this.d.identity.id}`);
    const outcome = await this.run(mine);
    this.unwritten.set(key, outcome);
    await this.finish(mine, outcome);
  }

  /** Does the work. Never throws: every failure becomes a Failed outcome. */
  private async run(r: Restore): Promise<Outcome> {
    try {
      return { kind: 'succeeded', result: await this.restorePod(r) };
    } catch (err) {
      if (err instanceof WorkError) return { kind: 'failed', reason: err.reason, message: err.message };
      const e = describeError(err);
      return { kind: 'failed', reason: Reason.RestoreFailed, message: e.code ? `${e.code}: ${e.message}` : e.message };
    }
  }

  private deadline(r: Restore): number {
    const created = Date.parse(r.metadata.creationTimestamp ?? '') || this.now().getTime();
    return created + (r.spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000 - DEADLINE_MARGIN_MS;
  }

  /** A checkpoint downloaded from the image store into the local root is removed once the restore is over. */
  private async restorePod(r: Restore): Promise<RestoreResult> {
    const staged: { ref?: CheckpointRef } = {};
    try {
      return await this.restorePodStaged(r, staged);
    } finally {
      if (staged.ref) this.d.store.remove(staged.ref);
    }
  }

  /** Downloads a checkpoint from the image store into this node's root and verifies its seal, before anything reads it. */
  private async stage(r: Restore, ref: CheckpointRef, staged: { ref?: CheckpointRef }): Promise<{ dir: string; seconds: number }> {
    const remote = this.d.remote as RemoteStore;
    const t0 = process.hrtime.bigint();
    this.d.store.remove(ref);
    const dir = this.d.store.checkpointDir(ref);
    this.d.store.mkdir(path.dirname(dir));
    staged.ref = ref;
    try {
      await download(remote, ref, dir, (p) => void this.reportTransfer(r, p));
    } catch (err) {
      const where = `checkpoint ${ref.namespace}/${ref.name} in ${remote.store.urlOf(storeKey(ref))}`;
      if (err instanceof SealError) throw new WorkError(Reason.ImageCorrupt, `${where} is refused (${err.problem}): ${err.message}`, { cause: err, code: err.problem });
      if (isStoreError(err, 'Decrypt')) throw new WorkError(Reason.ImageCorrupt, `${where} is refused: ${err.message}`, { cause: err, code: 'Decrypt' });
      if (isStoreError(err, 'NotFound')) throw new WorkError(Reason.CheckpointNotFound, `${where}: ${err.message}`, { cause: err });
      throw new WorkError(Reason.RestoreFailed, `${where}: download failed: ${(err as Error).message}`, { cause: err });
    }
    return { dir, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  }

  private async restorePodStaged(r: Restore, staged: { ref?: CheckpointRef }): Promise<RestoreResult> {
    const ns = r.metadata.namespace as string;
    const node = this.d.identity.nodeName;

    // The Checkpoint: in the Restore's own namespace (the path is built from it), finished, and its images
    // exactly in its own directory of this node's store.
    const cp = await this.d.api.getCheckpoint(ns, r.spec.checkpointName);
    if (!cp) throw new WorkError(Reason.CheckpointNotFound, `checkpoint ${ns}/${r.spec.checkpointName} does not exist`);
    if (cp.status?.phase !== 'Succeeded') throw new WorkError(Reason.CheckpointNotReady, `checkpoint ${ns}/${cp.metadata.name} is ${cp.status?.phase ?? 'Pending'}, not Succeeded`);
    const ref = refOf(cp.metadata);
    let downloadSeconds = 0;
    if (this.d.remote && cp.status.imageLocation === this.d.remote.store.urlOf(storeKey(ref))) {
      downloadSeconds = (await this.stage(r, ref, staged)).seconds;
    } else {
      try {
        if (!cp.status.imageLocation) throw new Error('the checkpoint has no status.imageLocation');
        this.d.store.checkpointDirAt(cp.status.imageLocation, ref);
      } catch (err) {
        throw new WorkError(Reason.CheckpointNotFound, `checkpoint ${ns}/${cp.metadata.name}: ${(err as Error).message}`);
      }
    }

    // The restore pod: the one the operator made for this Restore, on this node.
    const podName = r.status?.podName ?? r.spec.newPodName ?? `${r.spec.checkpointName}-restored`;
    const deadline = this.deadline(r);
    let pod = await this.restorePodObject(r, ns, podName);

    // Every app container must have images (checked before waiting: waiting would not help).
    const containers = (pod.spec?.containers ?? []).map((c) => c.name);
    const dirs = new Map<string, string>();
    for (const c of containers) {
      try {
        dirs.set(c, this.d.store.existingContainerDir(ref, c));
      } catch (err) {
        throw new WorkError(Reason.RestoreFailed, `pod ${ns}/${podName}: ${(err as Error).message}`);
      }
    }

    // Wait for the stubs.
    let stubs: ReadyStub[];
    const waitStart = Date.now();
    for (;;) {
      const look = findStubs(pod, this.d.mounts, this.proc);
      if ('stubs' in look) {
        stubs = look.stubs;
        break;
      }
      if (Date.now() >= deadline) {
        throw new WorkError(
          Reason.Timeout,
          `pod ${ns}/${podName}: the restore stubs were not all running within spec.timeoutSeconds=${r.spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS} (waited ${((Date.now() - waitStart) / 1000).toFixed(1)}s): ${look.notReady}`,
        );
      }
      await sleep(Math.min(this.d.pollMs ?? 250, Math.max(0, deadline - Date.now())));
      pod = await this.restorePodObject(r, ns, podName);
    }
    this.d.log(`restore ${ns}/${r.metadata.name}: stubs ready in pod ${podName}: ${stubs.map((s) => `${s.container.name}=${s.pid}`).join(', ')}`);

    // Read and verify every image first: a corrupt image must not leave some stubs morphed.
    const t0 = process.hrtime.bigint();
    const read = this.d.readImages ?? readVerified;
    const images = new Map<string, ContainerImages>();
    for (const s of stubs) {
      const dir = dirs.get(s.container.name) as string;
      let image: ContainerImages;
      try {
        image = await read(dir);
      } catch (err) {
        const e = describeError(err);
        throw new WorkError(Reason.ImageCorrupt, `container ${s.container.name}: images in ${dir} failed verification (${e.code ?? 'error'}): ${e.message}`, { cause: err, code: e.code });
      }
      images.set(s.container.name, image);
    }

    // Morph each stub.
    const restore = this.d.restore ?? checkpointRestore;
    const phaseFd = this.d.hooks?.phaseFd;
    phaseStep(phaseFd, 'morph');
    const done: Array<{ name: string; pid: number }> = [];
    for (const s of stubs) {
      const name = s.container.name;
      this.recheckStub(s, pod.metadata?.uid as string);
      const image = images.get(name) as ContainerImages;
      try {
        const pid = await restore({ image, stubPid: s.pid, ...(phaseFd !== undefined ? { phaseFd } : {}) });
        done.push({ name, pid });
      } catch (err) {
        const e = describeError(err);
        const before = done.length ? `; already restored: ${done.map((x) => `${x.name} (pid ${x.pid})`).join(', ')}` : '';
        if (isCorruptImage(err)) {
          throw new WorkError(Reason.ImageCorrupt, `container ${name}: images in ${dirs.get(name)} failed verification while filling stub ${s.pid} (the stub was killed, the saved task never ran) (${e.code}): ${e.message}${before}`, { cause: err, code: e.code });
        }
        throw new WorkError(Reason.RestoreFailed, `container ${name}: morphing stub ${s.pid} failed (the stub was killed): ${e.code ? `${e.code}: ` : ''}${e.message}${before}`, { cause: err, code: e.code });
      }
    }
    const restoreSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    phaseStep(phaseFd, 'restored');
    return { podName, nodeName: node, containers: done, durations: { downloadSeconds: round(downloadSeconds), restoreSeconds: round(restoreSeconds) } };
  }

  /** Download progress into status.transfer: best effort (a conflict or an error skips one report). */
  private async reportTransfer(r: Restore, p: Progress): Promise<void> {
    try {
      const current = await this.d.api.getRestore(r.metadata.namespace as string, r.metadata.name as string);
      if (!current || current.status?.phase !== 'Running' || current.status.claimedBy !== this.d.identity.id) return;
      await this.d.api.replaceRestoreStatus({ ...current, status: { ...current.status, transfer: { doneBytes: p.doneBytes, totalBytes: p.totalBytes } } });
    } catch (err) {
      this.d.log(`restore ${r.metadata.namespace}/${r.metadata.name}: download progress not written: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  /** The restore pod, checked to belong to this Restore and to run on this node. */
  private async restorePodObject(r: Restore, ns: string, podName: string): Promise<V1Pod> {
    const pod = await this.d.api.getPod(ns, podName);
    if (!pod) throw new WorkError(Reason.RestoreFailed, `restore pod ${ns}/${podName} not found`);
    if (!pod.metadata?.ownerReferences?.some((o) => o.uid === r.metadata.uid && o.kind === 'Restore')) {
      throw new WorkError(Reason.RestoreFailed, `pod ${ns}/${podName} is not owned by Restore ${r.metadata.name} (uid ${r.metadata.uid}); refusing to touch it`);
    }
    if (pod.spec?.nodeName !== this.d.identity.nodeName) {
      throw new WorkError(Reason.RestoreFailed, `restore pod ${ns}/${podName} is on node ${pod.spec?.nodeName ?? '(none)'}, not ${this.d.identity.nodeName}`);
    }
    if (pod.metadata.deletionTimestamp) throw new WorkError(Reason.RestoreFailed, `restore pod ${ns}/${podName} is being deleted`);
    return pod;
  }

  /** Right before morphing: the same process (start time), still in its container's cgroup, still the stub. */
  private recheckStub(s: ReadyStub, podUid: string): void {
    const name = s.container.name;
    try {
      recheckMembership(s.container, podUid, this.proc);
    } catch (err) {
      throw new WorkError(Reason.RestoreFailed, `container ${name}: stub ${s.pid}: ${(err as Error).message}`);
    }
    if (readStartTime(s.pid, this.proc) !== s.startTime || !isStubExe(exeOf(s.pid, this.proc))) {
      throw new WorkError(Reason.RestoreFailed, `container ${name}: process ${s.pid} is no longer the waiting restore stub`);
    }
  }

  /**
   * An earlier agent on this node died with this Restore Running. Its restorer seized every stub with
   * PTRACE_O_EXITKILL, so a stub it had started to morph died with it, and one it had let go runs the
   * restored task: what is left is either untouched or not ours to redo. When every container still runs
   * its untouched waiting stub (or none has started one yet), nothing was done: the restore is claimed
   * again and run. Otherwise it ends Failed/AgentRestarted, naming what the containers hold.
   */
  private async recover(r: Restore): Promise<void> {
    const previous = r.status?.claimedBy as string;
    const key = `${r.metadata.namespace}/${r.metadata.name}`;
    const left = await this.leftByEarlierAgent(r);
    if (left.untouched) {
      this.d.log(`restore ${key}: recovered work of ${previous}: no stub was touched (${left.what}); retrying`);
      await this.claimAndRun(key, r);
      return;
    }
    const message =
      `the agent restarted while this restore was running (claimed by ${previous}) and had begun on its stubs ` +
      `(${left.what}); it was not retried: delete this Restore (its pod goes with it) and create a new one`;
    this.d.log(`restore ${key}: recovered work of ${previous}`);
    await this.finish(r, { kind: 'failed', reason: Reason.AgentRestarted, message }, previous);
  }

  /** What the restore pod's containers hold now: untouched when a retry cannot act on a stub twice. */
  private async leftByEarlierAgent(r: Restore): Promise<{ untouched: boolean; what: string }> {
    const ns = r.metadata.namespace as string;
    const podName = r.status?.podName ?? r.spec.newPodName ?? `${r.spec.checkpointName}-restored`;
    let pod: V1Pod;
    try {
      pod = await this.restorePodObject(r, ns, podName);
    } catch (err) {
      return { untouched: false, what: (err as Error).message };
    }
    const statuses = pod.status?.containerStatuses ?? [];
    const neverStarted = (pod.spec?.containers ?? []).every((c) => {
      const st = statuses.find((x) => x.name === c.name);
      return !st?.containerID && !(st?.restartCount ?? 0);
    });
    if (neverStarted) return { untouched: true, what: 'no container has started yet' };
    const look = findStubs(pod, this.d.mounts, this.proc);
    if ('notReady' in look) return { untouched: false, what: look.notReady };
    for (const s of look.stubs) {
      const why = untouchedStubProblem(s.pid, this.proc);
      if (why) return { untouched: false, what: `container ${s.container.name}: ${why}` };
    }
    return { untouched: true, what: `every container runs its waiting stub: ${look.stubs.map((s) => `${s.container.name}=${s.pid}`).join(', ')}` };
  }

  private async finish(r: Restore, outcome: Outcome, claim = this.d.identity.id): Promise<void> {
    const key = `${r.metadata.namespace}/${r.metadata.name}`;
    const w = await writeFinalStatus(r, {
      claim,
      withResult: (current) => (outcome.kind === 'succeeded' ? restoreSucceeded(current, outcome.result, this.now()) : restoreFailed(current, outcome.reason, outcome.message, this.now())),
      replaceStatus: (next) => this.d.api.replaceRestoreStatus(next),
      reread: async (current) => (await this.d.api.getRestore(current.metadata.namespace as string, current.metadata.name as string)) ?? undefined,
    });
    this.unwritten.delete(key);
    if (w.kind === 'notOurs') this.d.log(`restore ${key}: no longer Running under our claim (phase ${w.obj.status?.phase}); result (${outcome.kind}) dropped`);
    if (w.kind === 'written') this.record(w.obj, outcome);
  }

  private record(r: Restore, outcome: Outcome): void {
    const m = this.d.metrics;
    const key = `${r.metadata.namespace}/${r.metadata.name}`;
    if (outcome.kind === 'succeeded') {
      m.downloadSeconds.observe(outcome.result.durations.downloadSeconds);
      m.restoreSeconds.observe(outcome.result.durations.restoreSeconds);
      m.restores.inc({ result: 'succeeded' });
    } else {
      m.restores.inc({ result: 'failed' });
    }
    const reason = outcome.kind === 'succeeded' ? Reason.Succeeded : outcome.reason;
    const message = outcome.kind === 'succeeded' ? (getCondition(r.status?.conditions, ConditionType.Ready)?.message ?? 'restored') : outcome.message;
    this.d.log(`restore ${key}: ${outcome.kind} (${reason}): ${message}`);
    this.d.api
      .createEvent({ object: { apiVersion: API_VERSION, kind: 'Restore', metadata: r.metadata }, type: outcome.kind === 'succeeded' ? 'Normal' : 'Warning', reason, message })
      .catch((err: Error) => this.d.log(`restore ${key}: could not record the Event: ${err.message.split('\n')[0]}`));
  }
}

function round(s: number): number {
  return Math.round(s * 1e6) / 1e6;
}
