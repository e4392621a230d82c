/**
 * The layering of docs/architecture.md, enforced: every relative import (import … from, export … from,
 * import(), require()) of every TypeScript and JavaScript file in the repository is checked against the
 * table below, and the table in docs/architecture.md must be this one, word for word (so the doc and the
 * rule cannot drift apart).
 *
 *   - Product code imports only its own folder, the folders of lower layers, the ones its row names, and
 *     crds/ (the API types, importable by all).
 *   - Nothing imports cli/ but cli/ and bin/.
 *   - Product code never imports test code (a *.test.ts, a test-*.ts helper, a test/ folder, testenv/).
 *   - Test code (the same) may import test helpers and any layer it drives (native/test drives the native
 *     core through the checkpoint library), but not cli/ from outside it.
 *
 * A folder with code that is in no row fails the test: give it a place in the table first.
 */
import * as fs from 'fs';
import * as path from 'path';

interface Unit {
  /** Folder, relative to the repository root. */
  folder: string;
  layer: number;
  /** Folders of the same or a higher layer it may import besides its own. */
  alsoImports?: string[];
  /** Instead of every lower layer: only these. */
  onlyImports?: string[];
  /** Only these folders may import it (and it may import itself). */
  onlyImportedBy?: string[];
  note: string;
}

/** Highest layer first. native/src is C++ (reached by native/lib through the built addon, not imported). */
const UNITS: Unit[] = [
  { folder: 'bin', layer: 5, onlyImports: ['cli'], note: 'the `cryopod` executable: runs the compiled cli/' },
  { folder: 'cli', layer: 4, note: 'the `cryopod` command: argument parsing, output, `inspect`' },
  { folder: 'operator', layer: 4, note: 'the operator' },
  { folder: 'node-agent', layer: 4, note: 'the node agent' },
  { folder: 'bench', layer: 4, note: '`npm run bench`' },
  { folder: 'demo', layer: 4, note: '`npm run demo`' },
  { folder: 'checkpoint', layer: 3, note: 'dump and restore of a process tree, with every check: the only way to native/lib' },
  { folder: 'kube', layer: 3, alsoImports: ['store'], note: 'the shared Kubernetes layer: queue, watch, conditions, constants' },
  { folder: 'store', layer: 3, alsoImports: ['kube'], note: 'the image store: filesystem and S3 backends' },
  { folder: 'images', layer: 2, alsoImports: ['native/lib'], note: 'CRIU image formats, the manifest (and the task model of native/lib)' },
  { folder: 'native/lib', layer: 2, onlyImportedBy: ['checkpoint', 'images'], note: 'the typed surface of the native addon' },
  { folder: 'crds', layer: 1, note: 'the API types: importable by all' },
];
/** Folders of test code only. */
const TEST_FOLDERS = ['testenv', 'native/test', 'e2e'];
/** Tooling that is part of no layer (build and test scripts). */
const TOOLING = ['scripts', 'helm', 'examples', 'docs', 'native/parasite', 'native/stub', 'native/src'];
const SKIP = new Set(['node_modules', 'dist', '.git', 'build']);

const ROOT = path.resolve(__dirname, '..');

function rel(file: string): string {
  return path.relative(ROOT, file).split(path.sep).join('/');
}

function within(file: string, folder: string): boolean {
  return file === folder || file.startsWith(`${folder}/`);
}

function unitOf(file: string): Unit | undefined {
  // The longest folder wins (native/lib before a plain native/ if one were listed).
  return UNITS.filter((u) => within(file, u.folder)).sort((a, b) => b.folder.length - a.folder.length)[0];
}

function isTestCode(file: string): boolean {
  const base = path.posix.basename(file);
  return (
    /\.test(\.[tj]s)?$/.test(base) ||
    base.startsWith('test-') ||
    file.split('/').slice(0, -1).includes('test') ||
    TEST_FOLDERS.some((f) => within(file, f))
  );
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name) || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sourceFiles(p, out);
    else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith('.d.ts') && dir !== ROOT) out.push(rel(p));
  }
  return out;
}

/** The relative specifiers a file imports, resolved to repository paths (extension-less). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const specs = new Set<string>();
  const patterns = [/\bfrom\s+['"](\.[^'"]*)['"]/g, /\bimport\s*\(\s*['"](\.[^'"]*)['"]\s*\)/g, /\brequire\s*\(\s*['"](\.[^'"]*)['"]\s*\)/g, /^\s*import\s+['"](\.[^'"]*)['"]/gm];
  for (const re of patterns) for (const m of text.matchAll(re)) specs.add(m[1]);
  return [...specs].map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)));
}

/** dist/cli/main.js is cli/ compiled (bin/ runs it). */
function sourceOf(target: string): string {
  return target.startsWith('dist/') ? target.slice('dist/'.length) : target;
}

/** The folders `u` may import besides its own: lower layers that let it, its extras, crds/. */
function mayImport(u: Unit): string[] {
  if (u.folder === 'crds') return [];
  if (u.onlyImports) return u.onlyImports;
  const lower = UNITS.filter((v) => v.layer < u.layer && v.folder !== 'crds' && (!v.onlyImportedBy || v.onlyImportedBy.includes(u.folder)));
  return [...(u.alsoImports ?? []), ...lower.map((v) => v.folder), 'crds'];
}

/** Why `file` may not import `target`, or undefined when it may. */
function violation(file: string, target: string): string | undefined {
  const from = unitOf(file);
  const to = unitOf(target);
  const fromTest = isTestCode(file);
  if (within(target, 'cli') && !within(file, 'cli') && !within(file, 'bin')) return 'nothing imports cli/ but cli/ and bin/';
  if (isTestCode(target)) return fromTest ? undefined : 'product code imports test code';
  if (fromTest || !from || !to) return undefined; // tooling without a layer is reported by the coverage test
  if (from.folder === to.folder || mayImport(from).includes(to.folder)) return undefined;
  if (to.onlyImportedBy && !to.onlyImportedBy.includes(from.folder)) return `only ${to.onlyImportedBy.map((f) => `${f}/`).join(' and ')} reach ${to.folder}/`;
  return `layer ${from.layer} (${from.folder}/) imports ${to.layer >= from.layer ? 'a peer or higher ' : ''}layer ${to.layer} (${to.folder}/)`;
}

/** The table of docs/architecture.md, as the rule above states it. */
function renderTable(): string {
  const rows = ['| layer | folder | may import (besides itself) | what |', '| --- | --- | --- | --- |'];
  for (const u of UNITS) {
    const may = mayImport(u).map((f) => `\`${f}/\``);
    rows.push(`| ${u.layer} | \`${u.folder}/\` | ${may.length ? may.join(', ') : 'nothing'} | ${u.note} |`);
  }
  return rows.join('\n');
}

const files = sourceFiles(ROOT);

test('the layering table in docs/architecture.md is the one this test enforces', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const m = /<!-- layering:begin -->\n([\s\S]*?)\n<!-- layering:end -->/.exec(doc);
  expect(m).not.toBeNull();
  expect((m as RegExpExecArray)[1].trim()).toBe(renderTable());
});

test('every folder with code has a place in the layering', () => {
  const homeless = files.filter((f) => !unitOf(f) && !isTestCode(f) && !TOOLING.some((t) => within(f, t)));
  expect(homeless).toEqual([]);
  expect(files.length).toBeGreaterThan(100);
});

test('no import goes against the layering', () => {
  const bad: string[] = [];
  let checked = 0;
  for (const f of files) {
    for (const target of importsOf(f).map(sourceOf)) {
      checked++;
      const why = violation(f, target);
      if (why) bad.push(`${f} imports ${target}: ${why}`);
    }
  }
  expect(bad).toEqual([]);
  expect(checked).toBeGreaterThan(200);
});

test('the rule catches what it must (a lower layer importing a higher one, cli/ from outside, product importing tests)', () => {
  expect(violation('images/read.ts', 'checkpoint/restore')).toMatch(/layer 2/);
  expect(violation('native/lib/index.ts', 'images/index')).toMatch(/layer 2/);
  expect(violation('checkpoint/dump.ts', 'node-agent/agent')).toMatch(/layer 3/);
  expect(violation('node-agent/dumper.ts', 'cli/main')).toMatch(/cli/);
  expect(violation('native/test/harness.ts', 'cli/main')).toMatch(/cli/);
  expect(violation('node-agent/restore-worker.ts', 'native/lib/index')).toMatch(/only checkpoint\/ and images\/ reach native\/lib/);
  expect(violation('operator/main.ts', 'node-agent/agent')).toMatch(/peer/);
  expect(violation('node-agent/agent.ts', 'node-agent/test-cluster')).toMatch(/test code/);
  expect(violation('crds/types.ts', 'operator/objects')).toMatch(/layer 1/);
  // and lets through what it must
  expect(violation('node-agent/restore-worker.ts', 'checkpoint/index')).toBeUndefined();
  expect(violation('checkpoint/restore.ts', 'native/lib/index')).toBeUndefined();
  expect(violation('images/read.ts', 'native/lib/types')).toBeUndefined();
  expect(violation('kube/queue.ts', 'store/index')).toBeUndefined();
  expect(violation('bin/cryopod.js', 'cli/main.js')).toBeUndefined();
  expect(violation('native/test/harness.ts', 'checkpoint/index')).toBeUndefined();
  expect(violation('operator/queue.ts', 'crds/types')).toBeUndefined();
  expect(violation('kube/watch.ts', 'native/lib/index')).toMatch(/only checkpoint/);
  expect(violation('bin/cryopod.js', 'checkpoint/index')).toMatch(/layer 5/);
});
