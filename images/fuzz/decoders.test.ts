/**
 * Property-based fuzzing (fast-check) of every image decoder of images/decode.ts, in memory: each image
 * of valid checkpoints (the fixture task with threads and every file kind, and the four-task tree) is
 * damaged (test/damage.ts) and decoded again. Whatever the bytes, a decoder returns or throws an
 * ImageError naming the file, never anything else (a TypeError, a RangeError, a protobufjs error let
 * through), and what it returns passes the layout checks the reader applies next or is refused by them
 * with an ImageError too. Runs: fuzzRuns (CRYOPOD_FUZZ_RUNS for longer, as `npm run fuzz` does).
 */
import fc from 'fast-check';
import {
  decodeCore, decodeFdinfo, decodeFiles, decodeFs, decodeIds, decodeInventory, decodeMm, decodePagemap, decodePipesData, decodePstree, decodeSeccomp,
  decodeThreadCore, DecodedFiles,
} from '../decode';
import { encodeTree } from '../encode';
import { ImageError } from '../errors';
import { checkPageRuns, checkVmas } from '../layout';
import { MAX_ENTRIES } from '../limits';
import { checkPstree, readerFail } from '../tree';
import { applyDamage, damages, fuzzRuns } from '../test/damage';
import { makeThreadedTask, makeTree } from '../test/test-fixture';
import { DumpedTask, DumpedTree } from '../../native/lib/types';

const RUNS = fuzzRuns(300);

/** What a decoder may do with hostile bytes: return, or throw an ImageError about that file. */
function decodesOrRefuses(name: string, run: () => unknown): void {
  try {
    run();
  } catch (err) {
    if (!(err instanceof ImageError)) throw new Error(`${name}: threw ${String(err)} instead of an ImageError`, { cause: err });
    expect(err.file).toBe(name);
  }
}

function decoderFor(tree: DumpedTree, files: DecodedFiles, name: string): ((buf: Uint8Array) => unknown) | undefined {
  const task = tree.tasks.find((t) => name.endsWith(`-${t.pid}.img`));
  const thread = tree.tasks.flatMap((t) => t.threads.map((th) => ({ t, th }))).find(({ th }) => name === `core-${th.tid}.img`);
  if (name === 'inventory.img') return (b) => decodeInventory(name, b);
  if (name === 'pstree.img') {
    return (b) => {
      const entries = decodePstree(name, b);
      checkPstree(entries.map(({ ps, otherTids }, i) => ({ pid: ps.pid, ppid: i === 0 ? 0 : ps.ppid, pgid: ps.pgid, sid: ps.sid, tids: [ps.pid, ...otherTids] })), readerFail);
    };
  }
  if (name === 'files.img') return (b) => decodeFiles(name, b, MAX_ENTRIES);
  if (name === 'pipes-data.img') return (b) => decodePipesData(name, b);
  if (name === 'seccomp.img') return (b) => decodeSeccomp(name, b);
  if (name.startsWith('fdinfo-')) return (b) => decodeFdinfo(name, b, files, 'files.img');
  if (thread) return (b) => decodeThreadCore(name, b, thread.th.tid, thread.t.creds);
  if (!task) return undefined;
  if (name.startsWith('core-')) return (b) => decodeCore(name, b);
  if (name.startsWith('ids-')) return (b) => decodeIds(name, b);
  if (name.startsWith('fs-')) return (b) => decodeFs(name, b);
  if (name.startsWith('mm-')) {
    // The reader checks the VMAs next, and the runs against them: they must refuse with an ImageError too.
    return (b) => {
      const { vmas } = decodeMm(name, b, files, 'files.img');
      checkVmas(vmas, name);
      checkPageRuns(vmas, task.pages, task.pages.reduce((n, r) => n + r.nrPages * 4096, 0), { mm: name, pagemap: name, pages: name });
    };
  }
  if (name.startsWith('pagemap-')) {
    const index = tree.tasks.indexOf(task);
    return (b) => {
      const { pages } = decodePagemap(name, b, index + 1);
      checkPageRuns(task.vmas, pages, task.pages.reduce((n, r) => n + r.nrPages * 4096, 0), { mm: name, pagemap: name, pages: name });
    };
  }
  return undefined;
}

const cases: Array<[string, DumpedTree]> = [
  ['the threaded task', { tasks: [makeThreadedTask() as DumpedTask], pipes: [], frozenSeconds: 0.1 }],
  ['the four-task tree', makeTree()],
];

describe.each(cases)('decoders of %s, fuzzed', (_what, tree) => {
  const images = encodeTree(tree);
  const files = decodeFiles('files.img', images.find((i) => i.name === 'files.img')!.data, MAX_ENTRIES);
  const targets = images.map((img) => ({ img, decode: decoderFor(tree, files, img.name) })).filter((t) => t.decode !== undefined);

  it('has a decoder for every image it writes', () => {
    expect(targets.map((t) => t.img.name).sort()).toEqual(images.map((i) => i.name).sort());
  });

  it.each(targets.map((t) => [t.img.name, t] as const))('%s: damaged bytes decode or are refused with an ImageError', (name, t) => {
    // The undamaged image decodes: the property is about damage, not about a decoder that refuses all.
    expect(() => t.decode!(t.img.data)).not.toThrow();
    fc.assert(fc.property(damages, (d) => decodesOrRefuses(name, () => t.decode!(applyDamage(t.img.data, d)))), { numRuns: RUNS });
  }, 60_000 + RUNS * 100);
});
