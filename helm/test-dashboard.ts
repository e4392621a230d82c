/**
 * Test helper: the chart's Grafana dashboard (helm/cryopod/dashboards/cryopod.json) as data: its panels'
 * PromQL, the metric names each one reads, and the query as Prometheus itself would run it (Grafana's
 * interval variables replaced by fixed windows).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const DASHBOARD_FILE = path.join(__dirname, 'cryopod', 'dashboards', 'cryopod.json');

export interface Panel {
  title: string;
  type: string;
  targets?: Array<{ expr: string; legendFormat?: string }>;
}

export interface Dashboard {
  title: string;
  uid: string;
  panels: Panel[];
}

export function loadDashboard(file = DASHBOARD_FILE): Dashboard {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Dashboard;
}

export function panelQueries(d: Dashboard): Array<{ panel: string; expr: string }> {
  return d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
}

/** The series names a query reads: every cryopod_ identifier in it (cryopod_freeze_seconds_bucket, …). */
export function metricNames(expr: string): string[] {
  return [...new Set(expr.match(/\bcryopod_[a-zA-Z0-9_]+/g) ?? [])];
}

/** The query with Grafana's variables as fixed windows, so that Prometheus's own parser can check and run it. */
export function asPrometheusQuery(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '1m');
}
