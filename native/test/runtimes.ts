/**
 * Builds the Go and JVM victims (victims/go-http-counter, victims/JvmHttpCounter.java) with the toolchains
 * installed here, offline (standard library only), into a cache shared by every worktree:
 * ~/.cache/cryopod/victims/<name>-<sha256 of the sources and the toolchain's version>/. A build is done once
 * per source and toolchain; a missing toolchain fails the test with what to install, never skips it.
 */
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { VICTIMS_DIR } from './procs';

const CACHE = path.join(os.homedir(), '.cache', 'cryopod', 'victims');

function findTool(name: string, extra: string[]): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...extra]) {
    const p = path.join(dir, name);
    if (dir !== '' && fs.existsSync(p)) return p;
  }
  throw new Error(`${name} is not installed (looked in PATH and ${extra.join(', ')}): the ${name} victim cannot be built`);
}

/** The cache directory for `name` built from `sources` by a tool whose version is `version`, and whether it is complete. */
function cacheDir(name: string, sources: string[], version: string): { dir: string; done: boolean } {
  const h = createHash('sha256').update(version);
  for (const s of sources) h.update(s).update(fs.readFileSync(s));
  const dir = path.join(CACHE, `${name}-${h.digest('hex').slice(0, 16)}`);
  return { dir, done: fs.existsSync(path.join(dir, '.done')) };
}

/** Builds into a temp dir beside `dir` and renames it into place, so a half-built cache is never used. */
function buildInto(dir: string, build: (tmp: string) => void): void {
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = fs.mkdtempSync(`${dir}.tmp-`);
  try {
    build(tmp);
    fs.writeFileSync(path.join(tmp, '.done'), '');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The Go net/http victim's binary, built once under nice with GOPROXY=off: an ordinary `go build` (cgo
 * on: linked with glibc, whose threads register rseq) or, with `cgo` false, a static one
 * (CGO_ENABLED=0, as container images often are: the Go runtime's own threads only).
 */
export function goHttpCounter(cgo = true): string {
  const go = findTool('go', ['/usr/local/go/bin', '/usr/lib/go/bin']);
  const src = path.join(VICTIMS_DIR, 'go-http-counter');
  // The settings of the build are part of its key: a cache built otherwise is not this one.
  const version = `${execFileSync(go, ['version'], { encoding: 'utf8' })} ${cgo ? 'cgo default' : 'CGO_ENABLED=0'}`;
  const { dir, done } = cacheDir('go-http-counter', [path.join(src, 'go.mod'), path.join(src, 'main.go')], version);
  if (!done) {
    buildInto(dir, (tmp) => {
      const env = { ...process.env, GOPROXY: 'off', GOFLAGS: '-mod=mod', ...(cgo ? {} : { CGO_ENABLED: '0' }), GOCACHE: path.join(CACHE, 'go-build'), GOPATH: path.join(CACHE, 'go-path') };
      execFileSync('nice', ['-n', '10', go, 'build', '-o', path.join(tmp, 'go-http-counter'), '.'], { cwd: src, env, stdio: ['ignore', 'inherit', 'inherit'] });
    });
  }
  return path.join(dir, 'go-http-counter');
}

/** The JVM victim: `java` and the class path holding JvmHttpCounter.class (compiled once by javac). */
export function jvmHttpCounter(): { java: string; classPath: string; main: string } {
  const javac = findTool('javac', ['/usr/lib/jvm/default-java/bin']);
  const java = findTool('java', ['/usr/lib/jvm/default-java/bin']);
  const src = path.join(VICTIMS_DIR, 'JvmHttpCounter.java');
  const version = execFileSync(javac, ['-version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const { dir, done } = cacheDir('jvm-http-counter', [src], version);
  if (!done) buildInto(dir, (tmp) => execFileSync('nice', ['-n', '10', javac, '-d', tmp, src], { stdio: ['ignore', 'inherit', 'inherit'] }));
  return { java, classPath: dir, main: 'JvmHttpCounter' };
}
