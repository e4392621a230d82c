/**
 * Property-based fuzzing (fast-check) of the readers above the single decoders:
 *
 *   readCheckpoint   a whole checkpoint (the four-task tree, and a task holding an fd of every kind of
 *                    images/files/) with one image damaged and the manifest re-hashed, so that the
 *                    structural checks, not the checksum, meet the damage: it resolves or rejects with
 *                    an ImageError naming a file of the checkpoint, never anything else;
 *   parseManifest    arbitrary JSON, and the valid manifest with fields replaced by hostile values:
 *                    an ImageError or a manifest whose every file name is a plain name in the directory;
 *   parseSealText    the same for the seal: a SealError, or a seal whose paths are relative and plain;
 *   verifySeal       a sealed checkpoint whose seal file is damaged (other than in white space, which the
 *                    signature does not cover: it signs the canonical JSON): a SealError, never a pass.
 */
import { generateKeyPairSync } from 'crypto';
import fc from 'fast-check';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { ImageError } from '../errors';
import { MANIFEST_FILE } from '../magic';
import { parseManifest } from '../manifest';
import { readCheckpoint } from '../read';
import { canonicalJson, SEAL_FILE, sealCheckpoint } from '../seal';
import { parseSealText, SealError, verifySeal } from '../seal-verify';
import { writeCheckpoint } from '../write';
import { applyDamage, damages, fuzzRuns } from '../test/damage';
import { recomputeManifest, removeDir, tempDir } from '../test/test-dir';
import { makeTask, makeTree, writePages, writeTreePages } from '../test/test-fixture';
import { DumpedTask, OpenFile } from '../../native/lib/types';

const RUNS = fuzzRuns(40);

/** The fixture task with one fd of each kind of images/files/ (states as the native core reports them). */
function taskWithEveryKind(): DumpedTask {
  const t = makeTask();
  const anon = (fd: number, kind: OpenFile['kind'], state: NonNullable<OpenFile['state']>, extra: Partial<OpenFile> = {}): OpenFile => ({
    fd, kind, path: `anon_inode:[${kind}]`, flags: 0o2, cloexec: false, pos: 0, size: 0, mode: 0, state, ...extra,
  });
  t.files.push(
    anon(10, 'eventfd', { num: { counter: 7, semaphore: 1 }, text: {} }),
    anon(11, 'epoll', { num: {}, text: {}, items: [{ num: { tfd: 10, events: 1, data: 42 }, text: {} }] }, { path: 'anon_inode:[eventpoll]' }),
    anon(12, 'timerfd', { num: { clockid: 1, ticks: 0, settime_flags: 0, value_sec: 5, value_nsec: 0, interval_sec: 1, interval_nsec: 0 }, text: {} }),
    anon(13, 'signalfd', { num: { sigmask: 1n << 9n }, text: {} }),
    anon(14, 'memfd', { num: { seals: 1 }, text: { name: 'm' }, data: Buffer.from('abc') }, { path: '/memfd:m (deleted)', size: 3, mode: 0o100600 }),
  );
  return t;
}

async function checkpointOf(make: 'tree' | 'kinds'): Promise<string> {
  const dir = await tempDir();
  if (make === 'tree') {
    const tree = makeTree();
    await writeTreePages(dir, tree);
    await writeCheckpoint(dir, tree);
  } else {
    const task = taskWithEveryKind();
    await writePages(dir, task);
    await writeCheckpoint(dir, task);
  }
  return dir;
}

describe.each(['tree', 'kinds'] as const)('readCheckpoint of a damaged checkpoint (%s), fuzzed', (make) => {
  let dir = '';
  let names: string[] = [];
  const pristine = new Map<string, Buffer>();
  beforeAll(async () => {
    dir = await checkpointOf(make);
    names = (await fsp.readdir(dir)).filter((n) => n.endsWith('.img') && !n.startsWith('pages-'));
    for (const n of [...names, MANIFEST_FILE]) pristine.set(n, await fsp.readFile(path.join(dir, n)));
  });
  afterAll(async () => removeDir(dir));

  it('the undamaged checkpoint reads', async () => {
    await expect(readCheckpoint(dir)).resolves.toBeDefined();
  });

  it('one damaged image, manifest re-hashed: resolves or rejects with an ImageError naming a file of it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), damages, async (pick, d) => {
        const name = names[pick % names.length];
        await fsp.writeFile(path.join(dir, name), applyDamage(pristine.get(name)!, d));
        await recomputeManifest(dir);
        try {
          await readCheckpoint(dir);
        } catch (err) {
          if (!(err instanceof ImageError)) throw new Error(`${name}: ${String(err)} is not an ImageError`, { cause: err });
          expect([...pristine.keys(), 'pages-1.img', 'pages-2.img', 'pages-3.img', 'pages-4.img']).toContain(err.file);
        } finally {
          for (const [n, b] of pristine) await fsp.writeFile(path.join(dir, n), b);
        }
      }),
      { numRuns: RUNS },
    );
  }, 60_000 + RUNS * 1_000);
});

const hostileValue = fc.oneof(
  fc.constantFrom('../x', '/etc/passwd', 'a/b', '.', '..', '', 'x\u0000y', '.cryopod-manifest.json.tmp', MANIFEST_FILE, SEAL_FILE, -1, 2 ** 53, 1.5, NaN, null, true, [], {}),
  fc.string(),
  fc.integer(),
);

describe('parseManifest, fuzzed', () => {
  let valid: Record<string, unknown> = {};
  beforeAll(async () => {
    const dir = await checkpointOf('tree');
    valid = JSON.parse(await fsp.readFile(path.join(dir, MANIFEST_FILE), 'utf8'));
    await removeDir(dir);
  });

  const accepted = (text: string): void => {
    try {
      const m = parseManifest(text);
      // What matters of a name: joined to the directory, it names a file right in it, not hidden.
      for (const f of m.files) {
        expect(path.dirname(path.join('/ckpt', f.name))).toBe('/ckpt');
        expect(f.name).not.toMatch(/^\.|[\/\u0000]/);
      }
    } catch (err) {
      if (!(err instanceof ImageError)) throw err;
    }
  };

  it('arbitrary JSON: a manifest of plain names or an ImageError', () => {
    fc.assert(fc.property(fc.json(), accepted), { numRuns: RUNS * 10 });
  });

  it('the valid manifest with one field hostile: a manifest of plain names or an ImageError', () => {
    fc.assert(
      fc.property(fc.nat(), fc.constantFrom('name', 'size', 'sha256', 'chunkBytes'), fc.constantFrom('format', 'formatVersion', 'pid', 'comm', 'createdAt', 'frozenSeconds', 'files'), fc.boolean(), hostileValue, (i, fileKey, topKey, inFile, v) => {
        const m = JSON.parse(JSON.stringify(valid)) as { files: Array<Record<string, unknown>> } & Record<string, unknown>;
        if (inFile) m.files[i % m.files.length][fileKey] = v;
        else (m as Record<string, unknown>)[topKey] = v;
        accepted(JSON.stringify(m));
      }),
      { numRuns: RUNS * 10 },
    );
  });
});

describe('seals, fuzzed', () => {
  let dir = '';
  let sealText = '';
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  beforeAll(async () => {
    dir = await checkpointOf('tree');
    await sealCheckpoint(dir, { key: privateKey });
    sealText = await fsp.readFile(path.join(dir, SEAL_FILE), 'utf8');
  });
  afterAll(async () => removeDir(dir));

  it('parseSealText of arbitrary JSON: a seal of plain relative paths or a SealError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.constant(sealText)), fc.nat(), hostileValue, (text, i, v) => {
        let t = text;
        const parsed = (() => { try { return JSON.parse(text); } catch { return undefined; } })();
        if (parsed?.files?.length) {
          parsed.files[i % parsed.files.length].path = v;
          t = JSON.stringify(parsed);
        }
        try {
          const seal = parseSealText(t);
          for (const f of seal.files) expect(f.path.split('/').every((c) => c !== '' && c !== '.' && c !== '..')).toBe(true);
        } catch (err) {
          if (!(err instanceof SealError)) throw err;
        }
      }),
      { numRuns: RUNS * 10 },
    );
  });

  it('verifySeal with the seal file damaged: always a SealError, never a pass', async () => {
    await expect(verifySeal(dir, { trusted: [publicKey] })).resolves.toBeDefined();
    await fc.assert(
      fc.asyncProperty(damages, async (d) => {
        const damaged = applyDamage(Buffer.from(sealText), d);
        // Damage that leaves the same JSON (white space) is no tampering: the signature covers the content.
        const same = (() => { try { return canonicalJson(JSON.parse(damaged.toString('utf8'))) === canonicalJson(JSON.parse(sealText)); } catch { return false; } })();
        fc.pre(!same);
        await fsp.writeFile(path.join(dir, SEAL_FILE), damaged);
        try {
          await expect(verifySeal(dir, { trusted: [publicKey] })).rejects.toBeInstanceOf(SealError);
        } finally {
          await fsp.writeFile(path.join(dir, SEAL_FILE), sealText);
        }
      }),
      { numRuns: RUNS },
    );
  }, 60_000 + RUNS * 1_000);
});
