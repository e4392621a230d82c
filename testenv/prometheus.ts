/**
 * A private Prometheus (Debian's package, /usr/bin/prometheus; scripts/prepare-host.sh installs it) for one
 * test: a free loopback port, config and TSDB in a temp dir, scraping the given targets every 250 ms, and
 * a small client for its HTTP API. Stopped (and its dir removed) by stop(), which tests call in afterAll;
 * setpriv's PDEATHSIG (process.ts) ends it if the test runner dies first.
 *
 *   const prom = await startPrometheus({ agent: ['127.0.0.1:9090'], operator: ['127.0.0.1:8080'] });
 *   await prom.waitForTargetsUp();
 *   const v = await prom.query('histogram_quantile(0.99, sum by (le) (cryopod_freeze_seconds_bucket))');
 *   await prom.stop();
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from './ports';
import { startServer, waitUntil, type ServerProcess } from './process';
import { waitFor } from './wait';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';
/** Short, so a test sees a new sample within a fraction of a second instead of Prometheus's default minute. */
export const SCRAPE_INTERVAL = '250ms';

/** One sample of an instant vector: the series' labels and its value. */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export interface Prometheus {
  /** http://127.0.0.1:PORT (the web UI is there too: /graph). */
  url: string;
  dir: string;
  process: ServerProcess;
  /** An instant query (PromQL) through /api/v1/query. */
  query(promql: string): Promise<Sample[]>;
  /** Resolves when every configured target's last scrape succeeded; fails with the targets' errors. */
  waitForTargetsUp(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Targets by job name, as host:port (scraped at /metrics over plain HTTP). */
export type ScrapeTargets = Record<string, string[]>;

export function prometheusConfig(targets: ScrapeTargets): string {
  // JSON is YAML: no YAML writer needed.
  return JSON.stringify({
    global: { scrape_interval: SCRAPE_INTERVAL, scrape_timeout: SCRAPE_INTERVAL, evaluation_interval: '1s' },
    scrape_configs: Object.entries(targets).map(([job, addrs]) => ({ job_name: job, metrics_path: '/metrics', static_configs: [{ targets: addrs }] })),
  });
}

function getJson(url: string): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 5000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          reject(new Error(`${url}: HTTP ${res.statusCode}, not JSON: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
  });
}

export async function startPrometheus(targets: ScrapeTargets, timeoutMs = 30000): Promise<Prometheus> {
  if (!existsSync(PROMETHEUS)) throw new Error(`${PROMETHEUS} is missing: run scripts/prepare-host.sh (it installs Debian's prometheus package)`);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cryopod-prometheus-'));
  const [port] = await freePorts(1);
  const url = `http://127.0.0.1:${port}`;
  const config = path.join(dir, 'prometheus.yml');
  await fs.writeFile(config, prometheusConfig(targets));
  const proc = startServer(
    'prometheus',
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    path.join(dir, 'prometheus.log'),
  );
  const stop = async (): Promise<void> => {
    await proc.stop();
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(proc, 'ready', async () => (await getJson(`${url}/api/v1/status/buildinfo`)).status === 200, timeoutMs);
  } catch (err) {
    await stop();
    throw err;
  }

  const query = async (promql: string): Promise<Sample[]> => {
    const { status, body } = await getJson(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    if (status !== 200 || body.status !== 'success') throw new Error(`query ${promql}: HTTP ${status}: ${body.error ?? JSON.stringify(body)}`);
    if (body.data.resultType !== 'vector') throw new Error(`query ${promql}: a ${body.data.resultType}, not an instant vector`);
    return (body.data.result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  };

  const expected = Object.values(targets).reduce((n, t) => n + t.length, 0);
  const waitForTargetsUp = async (ms = 20000): Promise<void> => {
    await waitFor(
      `all ${expected} scrape targets up`,
      async () => {
        const { body } = await getJson(`${url}/api/v1/targets?state=active`);
        const active = body.data.activeTargets as Array<{ scrapeUrl: string; health: string; lastError: string }>;
        if (active.length === expected && active.every((t) => t.health === 'up')) return true;
        throw new Error(active.map((t) => `${t.scrapeUrl}: ${t.health} ${t.lastError}`).join('; ') || 'no targets yet');
      },
      ms,
      100,
    );
  };

  return { url, dir, process: proc, query, waitForTargetsUp, stop };
}

/** `promtool check metrics` on a /metrics text: the lint findings (empty: clean). */
export function promtoolCheckMetrics(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(PROMTOOL, ['check', 'metrics'], (err, stdout, stderr) => {
      const findings = `${stdout}${stderr}`.trim();
      // Exit 1 with findings is a lint failure (returned); anything else is promtool failing to run.
      if (err && !findings) reject(err);
      else resolve(findings);
    });
    child.stdin!.end(text);
  });
}

/** The sample names in a /metrics text (cryopod_freeze_seconds_bucket, …), HELP and TYPE lines left out. */
export function sampleNames(text: string): Set<string> {
  return new Set(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]));
}

/**
 * The (lower, upper] bounds of the bucket of histogram that holds value, read from a /metrics text: the
 * precision a histogram_quantile of it has (it interpolates inside the bucket the rank falls in).
 */
export function bucketOf(text: string, histogram: string, value: number): { lower: number; upper: number } {
  const line = new RegExp(`^${histogram}_bucket\\{(?:[^}]*,)?le="([^"]+)"`, 'gm');
  const bounds = [...new Set([...text.matchAll(line)].map((m) => Number(m[1])).filter(Number.isFinite))].sort((a, b) => a - b);
  const i = bounds.findIndex((b) => value <= b);
  if (i < 0) throw new Error(`${value} is above every finite bucket of ${histogram} (${bounds.join(', ') || 'none'})`);
  return { lower: i === 0 ? 0 : bounds[i - 1], upper: bounds[i] };
}
