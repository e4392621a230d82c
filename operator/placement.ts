/**
 * Whether a saved pod may run on the node a Restore names, pure.
 *
 * The restored pod is bound to its node directly (spec.nodeName: the agent there must morph it), which
 * skips the scheduler. So the operator checks here what the scheduler would have checked for the saved
 * spec, and the pod keeps its nodeSelector, affinity and tolerations (the kubelet's own admission checks
 * them again). A tenant who names a node cannot place a pod where its own constraints, or the node's taints,
 * say it must not run:
 *   - spec.nodeSelector: every label equal;
 *   - spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: one term whose every
 *     matchExpression (on labels) and matchField (metadata.name) holds;
 *   - the node's NoSchedule and NoExecute taints: each tolerated (a cordoned node counts as tainted
 *     node.kubernetes.io/unschedulable:NoSchedule, as the node lifecycle controller marks it).
 * Preferred terms are preferences and are not checked; resources are the kubelet's to admit or refuse.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const UNSCHEDULABLE_TAINT = 'node.kubernetes.io/unschedulable';

export interface NodeFacts {
  name: string;
  labels: Record<string, string>;
  taints: { key: string; value?: string; effect: string }[];
  /** Cordoned (spec.unschedulable): the scheduler places no new pod there, so neither do we. */
  unschedulable: boolean;
}

interface Requirement {
  key: string;
  operator: string;
  values?: string[];
}

function holds(r: Requirement, value: string | undefined): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || values.length !== 1 || !/^-?\d+$/.test(value) || !/^-?\d+$/.test(values[0])) return false;
      return r.operator === 'Gt' ? BigInt(value) > BigInt(values[0]) : BigInt(value) < BigInt(values[0]);
    }
    default:
      return false; // an operator we do not know cannot be shown to hold
  }
}

function termHolds(term: Json, node: NodeFacts): boolean {
  const exprs: Requirement[] = term.matchExpressions ?? [];
  const fields: Requirement[] = term.matchFields ?? [];
  return (
    exprs.every((r) => holds(r, node.labels[r.key])) &&
    fields.every((r) => holds(r, r.key === 'metadata.name' ? node.name : undefined))
  );
}

function tolerates(tolerations: Json[], taint: NodeFacts['taints'][number]): boolean {
  return tolerations.some((t) => {
    if (t.effect && t.effect !== taint.effect) return false;
    if (t.operator === 'Exists') return !t.key || t.key === taint.key;
    return t.key === taint.key && (t.value ?? '') === (taint.value ?? '');
  });
}

/** Why the saved pod spec may not run on this node, or undefined when it may. */
export function placementConflict(spec: Json, node: NodeFacts): string | undefined {
  for (const [key, want] of Object.entries<string>(spec.nodeSelector ?? {})) {
    if (node.labels[key] !== want) {
      return `the pod's nodeSelector ${key}=${want} does not match node ${node.name} (${key}=${node.labels[key] ?? '<unset>'})`;
    }
  }
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const terms: Json[] | undefined = required?.nodeSelectorTerms;
  if (terms && terms.length > 0 && !terms.some((t) => termHolds(t, node))) {
    return `node ${node.name} matches none of the pod's ${terms.length} required node affinity term(s)`;
  }
  const taints = [...node.taints];
  if (node.unschedulable && !taints.some((t) => t.key === UNSCHEDULABLE_TAINT)) taints.push({ key: UNSCHEDULABLE_TAINT, effect: 'NoSchedule' });
  for (const taint of taints) {
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
    if (!tolerates(spec.tolerations ?? [], taint)) {
      return `node ${node.name} has taint ${taint.key}${taint.value ? `=${taint.value}` : ''}:${taint.effect}, which the pod does not tolerate`;
    }
  }
  return undefined;
}

/** The facts placementConflict needs, from a v1 Node object. */
export function nodeFacts(node: Json): NodeFacts {
  return {
    name: node.metadata?.name ?? '',
    labels: node.metadata?.labels ?? {},
    taints: node.spec?.taints ?? [],
    unschedulable: node.spec?.unschedulable === true,
  };
}
