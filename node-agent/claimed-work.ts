/**
 * The routing every kind of node-local work shares (Checkpoints and Restores): a level-based look at
 * the object decides, from its phase and claim alone, what this agent does next.
 *
 *   gone                                  → forget any result not yet written
 *   not labelled for this node            → nothing (another agent's work)
 *   Running, claimed by us, result pending → write the result we could not write before
 *   Dispatched                            → claim it and do the work
 *   Running, claimed on this node earlier → recover (an earlier agent instance died mid-work)
 *
 * and the final status write both kinds make at the end (writeFinalStatus).
 */
import { NODE_LABEL } from '../kube';
import { AgentIdentity, isThisNodesClaim } from './identity';
import { ConflictError } from './kube';

export interface ClaimableWork {
  metadata: { labels?: Record<string, string> };
  status?: { phase?: string; claimedBy?: string };
}

export interface WorkRoutes<T, Outcome> {
  finish(obj: T, outcome: Outcome): Promise<void>;
  claimAndRun(key: string, obj: T): Promise<void>;
  recover(obj: T): Promise<void>;
}

export async function routeClaimedWork<T extends ClaimableWork, Outcome>(
  key: string,
  obj: T | undefined,
  identity: AgentIdentity,
  unwritten: Map<string, Outcome>,
  routes: WorkRoutes<T, Outcome>,
): Promise<void> {
  if (!obj) {
    unwritten.delete(key);
    return;
  }
  if (obj.metadata.labels?.[NODE_LABEL] !== identity.nodeName) return;
  const st = obj.status ?? {};
  const pending = unwritten.get(key);
  if (pending && st.phase === 'Running' && st.claimedBy === identity.id) {
    await routes.finish(obj, pending);
  } else if (st.phase === 'Dispatched') {
    await routes.claimAndRun(key, obj);
  } else if (st.phase === 'Running' && isThisNodesClaim(st.claimedBy, identity.nodeName)) {
    // An earlier instance's claim, or our own whose claim response was lost before the work started
    // (the queue runs one handler per key, so it is not in flight here).
    await routes.recover(obj);
  }
}

export interface FinalStatusWrite<T> {
  /** The claim the result belongs to (ours, or an earlier instance's when recovering its work). */
  claim: string;
  /** The object with its final status, computed from the current object. */
  withResult(current: T): T;
  /** PUT …/status on the object's resourceVersion; throws ConflictError on 409. */
  replaceStatus(next: T): Promise<T>;
  /** A fresh read after a conflict (undefined: deleted meanwhile). */
  reread(current: T): Promise<T | undefined>;
}

export type FinalStatusOutcome<T> = { kind: 'written'; obj: T } | { kind: 'notOurs'; obj: T } | { kind: 'gone' };

/**
 * Writes a result as the final status, but only while the object is still Running under the claim (the
 * operator may have failed it meanwhile, e.g. on its timeout: then the result is not ours to write), with
 * up to five re-reads on conflict.
 */
export async function writeFinalStatus<T extends ClaimableWork>(obj: T, w: FinalStatusWrite<T>): Promise<FinalStatusOutcome<T>> {
  let current = obj;
  for (let attempt = 0; ; attempt++) {
    if (current.status?.phase !== 'Running' || current.status.claimedBy !== w.claim) return { kind: 'notOurs', obj: current };
    try {
      return { kind: 'written', obj: await w.replaceStatus(w.withResult(current)) };
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= 5) throw err;
      const again = await w.reread(current);
      if (!again) return { kind: 'gone' };
      current = again;
    }
  }
}
