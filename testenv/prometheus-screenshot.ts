/**
 * A picture of Prometheus's own graph page, rendered by headless Chromium (Debian's `chromium`:
 * `CRYOPOD_SCREENSHOTS=1 scripts/prepare-host.sh` installs it; no test needs it otherwise). The pictures
 * in docs/images come from here (scripts/screenshot-metrics.sh): one graph of the p50 and p99 of
 * cryopod_freeze_seconds over the bucket totals, two lines far enough apart for the axis to show the
 * buckets, not float noise within one.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** The PromQL of the picture: both quantiles, told apart by a "quantile" label. */
export function freezeQuantilesQuery(quantiles: string[] = ['0.5', '0.99']): string {
  return quantiles
    .map((x) => `label_replace(histogram_quantile(${x}, sum by (le) (cryopod_freeze_seconds_bucket)), "quantile", "${x}", "", "")`)
    .join(' or ');
}

/** Screenshots PROMETHEUS_URL's graph page of EXPR over the last RANGE (a Prometheus duration) into FILE (PNG). */
export async function screenshotGraph(prometheusUrl: string, file: string, expr: string, range: string): Promise<void> {
  const query = `g0.expr=${encodeURIComponent(expr)}&g0.tab=0&g0.range_input=${range}`;
  await promisify(execFile)(
    'chromium',
    ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--window-size=1000,860', '--virtual-time-budget=8000', `--screenshot=${file}`, `${prometheusUrl}/graph?${query}`],
    { timeout: 60000 },
  );
}
