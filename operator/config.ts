/**
 * Operator settings from flags (--name=value or --name value) with environment fallbacks (CRYOPOD_NAME),
 * so the Deployment can use either. Exact messages for bad values: a typo must stop the operator at start,
 * not make it misbehave later.
 */

export interface OperatorConfig {
  /** Path of a kubeconfig; undefined = in-cluster service account. */
  kubeconfig?: string;
  /** Watch one namespace only; undefined = all namespaces. */
  namespace?: string;
  /** The shared image directory root, as mounted in the operator's pod. */
  storageRoot: string;
  /** A Dispatched object no agent claimed for this long fails with AgentUnavailable. */
  agentClaimTimeoutSeconds: number;
  /** Keep the last N Succeeded checkpoints per pod, delete older ones (0 = keep all). */
  keepLast: number;
  /** Delete finished checkpoints this long after they finished (0 = never). */
  ttlSecondsAfterFinished: number;
  /** Image that holds the restore stub, run as the restored pod's init container. */
  stubImage: string;
  /** Path of the stub inside stubImage. */
  stubPath: string;
  /** Port of /metrics and /healthz (0 = no server). */
  metricsPort: number;
  concurrency: number;
  /** Every object is listed again at least this often (a safety net under the watch). */
  resyncSeconds: number;
  /** How often to look again at objects waiting on something the operator does not watch (pod scheduling). */
  pollSeconds: number;
  /** The image store agents publish to (s3://bucket/prefix or file:///root); unset: the shared root only. */
  storeUrl?: string;
  /** The mounted Secret with the store's credentials and the trusted seal keys (store/credentials.ts). */
  storeSecretDir?: string;
  /** "true": accept unsigned checkpoints from the store (never wrongly signed ones). */
  insecureUnsigned: string;
  /** How often the image store is swept for orphans (images no Checkpoint names; 0 = never). */
  orphanSweepSeconds: number;
}

export const DEFAULTS: OperatorConfig = {
  storageRoot: '/var/lib/cryopod/images',
  agentClaimTimeoutSeconds: 30,
  keepLast: 0,
  ttlSecondsAfterFinished: 0,
  stubImage: 'cryopod/cryopod:latest',
  stubPath: '/opt/cryopod/cryopod-stub',
  metricsPort: 8080,
  concurrency: 4,
  resyncSeconds: 120,
  pollSeconds: 5,
  insecureUnsigned: 'false',
  orphanSweepSeconds: 3600,
};

type Key = keyof OperatorConfig;
const FLAGS: Record<string, Key> = {
  kubeconfig: 'kubeconfig',
  namespace: 'namespace',
  'storage-root': 'storageRoot',
  'agent-claim-timeout': 'agentClaimTimeoutSeconds',
  'keep-last': 'keepLast',
  'ttl-after-finished': 'ttlSecondsAfterFinished',
  'stub-image': 'stubImage',
  'stub-path': 'stubPath',
  'metrics-port': 'metricsPort',
  concurrency: 'concurrency',
  'resync-seconds': 'resyncSeconds',
  'poll-seconds': 'pollSeconds',
  'store-url': 'storeUrl',
  'store-secret-dir': 'storeSecretDir',
  'insecure-unsigned': 'insecureUnsigned',
  'orphan-sweep-seconds': 'orphanSweepSeconds',
};

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig {
  const raw = new Map<string, string>();
  for (const [flag] of Object.entries(FLAGS)) {
    const v = env[`CRYOPOD_${flag.toUpperCase().replace(/-/g, '_')}`];
    if (v !== undefined && v !== '') raw.set(flag, v);
  }
  if (env.KUBECONFIG && !raw.has('kubeconfig')) raw.set('kubeconfig', env.KUBECONFIG);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m || !(m[1] in FLAGS)) throw new Error(`unknown argument ${argv[i]} (flags: ${Object.keys(FLAGS).map((f) => `--${f}`).join(' ')})`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${m[1]} needs a value`);
    raw.set(m[1], value);
  }
  const cfg: OperatorConfig = { ...DEFAULTS };
  for (const [flag, value] of raw) {
    const key = FLAGS[flag];
    if (typeof DEFAULTS[key] === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0 || (key !== 'agentClaimTimeoutSeconds' && !Number.isInteger(n))) {
        throw new Error(`--${flag}: ${JSON.stringify(value)} is not a non-negative ${key === 'agentClaimTimeoutSeconds' ? 'number' : 'integer'}`);
      }
      (cfg as unknown as Record<string, number>)[key] = n;
    } else {
      (cfg as unknown as Record<string, string>)[key] = value;
    }
  }
  if (!cfg.storageRoot.startsWith('/')) throw new Error(`--storage-root: ${cfg.storageRoot} is not an absolute path`);
  if (cfg.agentClaimTimeoutSeconds <= 0) throw new Error('--agent-claim-timeout must be more than 0');
  if (cfg.concurrency < 1) throw new Error('--concurrency must be at least 1');
  return cfg;
}
