/**
 * Who this agent is, as written to status.claimedBy:  <node>/<agent pod name or hostname>/<boot id>
 *
 * The boot ID is new for every start of the agent process, so a restarted agent (same node, same pod name)
 * tells its own claims from the claims of the instance that died: a Running claim with this node's prefix
 * and another boot ID is an earlier instance's, and is recovered (recovery.ts). This relies on one agent
 * per node at a time (a DaemonSet updated with maxSurge 0, the default).
 */
import * as crypto from 'crypto';

export interface AgentIdentity {
  nodeName: string;
  id: string;
}

export function makeIdentity(nodeName: string, podName: string, bootId = crypto.randomBytes(4).toString('hex')): AgentIdentity {
  return { nodeName, id: `${nodeName}/${podName}/${bootId}` };
}

/** A claim by some instance of the agent on this node (this one or an earlier one). */
export function isThisNodesClaim(claimedBy: string | undefined, nodeName: string): boolean {
  return !!claimedBy && claimedBy.startsWith(`${nodeName}/`);
}
