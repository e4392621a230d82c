/**
 * The routing every kind of node-local work shares (Checkpoints and Restores): a level-based look at
 * the object decides, from its phase and claim alone, what this agent does next.
 *
 *   gone                                  → forget any result not yet written
 *   not labelled for this node            → nothing (another agent's work)
 *   Running, claimed by us, result pending → write the result we could not write before
 *   Dispatched                            → claim it and do the work
 *   Running, claimed on this node earlier → recover (an earlier agent instance died mid-work)
 */
import { NODE_LABEL } from '../kube';
import { AgentIdentity, isThisNodesClaim } from './identity';

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
