/**
 * The agent's settings, from flags (--name=value or --name value) with environment fallbacks:
 *
 *   --node-name     NODE_NAME              this node (the DaemonSet sets it from spec.nodeName); required
 *   --pod-name      POD_NAME               the agent's pod (default: the hostname), part of the agent ID
 *   --storage-root  CRYOPOD_STORAGE_ROOT   shared image directory (default /var/lib/cryopod/images)
 *   --state-dir     CRYOPOD_STATE_DIR      node-local state: the freeze journal (default /var/lib/cryopod/agent)
 *   --port          CRYOPOD_METRICS_PORT   /metrics and /healthz (default 9464; 0 picks a free port)
 *   --bind          CRYOPOD_METRICS_BIND   address to listen on (default 0.0.0.0)
 *   --kubeconfig    KUBECONFIG             default: in-cluster service account
 *   --freeze-mode   CRYOPOD_FREEZE_MODE    native (default) | agent: see dumper.ts
 *   --concurrency   CRYOPOD_CONCURRENCY    checkpoints handled at once (default 1)
 *   --store-url     CRYOPOD_STORE_URL      an image store (s3://bucket/prefix or file:///shared): images are
 *                                          dumped into --storage-root (then node-local staging), sealed,
 *                                          uploaded there, and the local copy removed once confirmed
 *   --store-secret-dir CRYOPOD_STORE_SECRET_DIR  the mounted Secret with the store's credentials and keys
 *                                          (store/credentials.ts)
 *   --insecure-unsigned CRYOPOD_INSECURE_UNSIGNED  "true": restore unsigned checkpoints from the store
 *   --store-retry-seconds CRYOPOD_STORE_RETRY_SECONDS  how long an upload or download retries a failing store (default 120)
 *
 * No setting here is a test switch: tests pass their hooks to the Agent (AgentOverrides), never through
 * the environment of the privileged agent.
 */
import * as os from 'os';
import { FreezeMode } from './dumper';

export interface AgentConfig {
  nodeName: string;
  podName: string;
  storageRoot: string;
  stateDir: string;
  port: number;
  bind: string;
  kubeconfig?: string;
  freezeMode: FreezeMode;
  concurrency: number;
  storeUrl?: string;
  storeSecretDir?: string;
  allowUnsigned?: boolean;
  storeRetrySeconds?: number;
}

const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): AgentConfig {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length) flags.set(a.slice(2), argv[++i]);
    else throw new Error(`flag ${a} needs a value`);
  }
  const known = ['node-name', 'pod-name', 'storage-root', 'state-dir', 'port', 'bind', 'kubeconfig', 'freeze-mode', 'concurrency', 'store-url', 'store-secret-dir', 'insecure-unsigned', 'store-retry-seconds'];
  for (const k of flags.keys()) if (!known.includes(k)) throw new Error(`unknown flag --${k} (known: ${known.map((x) => `--${x}`).join(', ')})`);
  const get = (flag: string, envName: string): string | undefined => flags.get(flag) ?? (env[envName] || undefined);

  const nodeName = get('node-name', 'NODE_NAME');
  if (!nodeName || !NODE_NAME_RE.test(nodeName)) throw new Error(`--node-name (or NODE_NAME) must be a node name, got ${JSON.stringify(nodeName ?? '')}`);
  const port = Number(get('port', 'CRYOPOD_METRICS_PORT') ?? 9464);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${port}`);
  const freezeMode = (get('freeze-mode', 'CRYOPOD_FREEZE_MODE') ?? 'native') as FreezeMode;
  if (freezeMode !== 'native' && freezeMode !== 'agent') throw new Error(`--freeze-mode must be native or agent, got ${freezeMode}`);
  const concurrency = Number(get('concurrency', 'CRYOPOD_CONCURRENCY') ?? 1);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16) throw new Error(`--concurrency must be 1..16, got ${concurrency}`);
  const storageRoot = get('storage-root', 'CRYOPOD_STORAGE_ROOT') ?? '/var/lib/cryopod/images';
  const stateDir = get('state-dir', 'CRYOPOD_STATE_DIR') ?? '/var/lib/cryopod/agent';
  for (const [f, v] of [['--storage-root', storageRoot], ['--state-dir', stateDir]]) {
    if (!v.startsWith('/')) throw new Error(`${f} must be an absolute path, got ${v}`);
  }
  return {
    nodeName,
    podName: get('pod-name', 'POD_NAME') ?? os.hostname(),
    storageRoot,
    stateDir,
    port,
    bind: get('bind', 'CRYOPOD_METRICS_BIND') ?? '0.0.0.0',
    kubeconfig: get('kubeconfig', 'KUBECONFIG'),
    freezeMode,
    concurrency,
    storeUrl: get('store-url', 'CRYOPOD_STORE_URL'),
    storeSecretDir: get('store-secret-dir', 'CRYOPOD_STORE_SECRET_DIR'),
    allowUnsigned: get('insecure-unsigned', 'CRYOPOD_INSECURE_UNSIGNED') === 'true',
    storeRetrySeconds: retrySeconds(get('store-retry-seconds', 'CRYOPOD_STORE_RETRY_SECONDS')),
  };
}

function retrySeconds(v: string | undefined): number {
  const n = Number(v ?? 120);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--store-retry-seconds must be a non-negative number, got ${v}`);
  return n;
}
