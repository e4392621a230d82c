/**
 * Checkpoints that are valid in shape but built to make a reader or a restorer spend memory: the cases of
 * issue 14 (a 14 MB mm image with 400k VMAs; a tree whose child claims a 16 GiB run of inherited pages).
 * Every checksum and structural check passes: only the caps on what an image may claim stand between
 * them and the restorer's memory.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { DumpedTask, Vma } from '../../native/lib/types';
import { encodeTask } from '../encode';
import { imageName, PAGES_FILE } from '../magic';
import { writeCheckpoint } from '../write';
import { recomputeManifest } from './test-dir';
import { makeTask, patternBytes, pagesCount } from './test-fixture';

const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;

/** `count` one-page anonymous VMAs with a page's gap between them, from `base` up. */
export function manyVmas(count: number, base = 0x6000_0000_0000): Vma[] {
  const out: Vma[] = [];
  for (let i = 0; i < count; i++) {
    const start = base + i * 0x2000;
    out.push({ start, end: start + 0x1000, pgoff: 0, prot: 3, flags: MAP_PRIVATE | MAP_ANONYMOUS, kind: 'anon', name: '', madv: 0 });
  }
  return out;
}

/**
 * The fixture task with `count` more VMAs (no pages in them), written to `dir`. The writer refuses more
 * than a restore reads, so the fixture is written and its mm image then replaced (manifest re-hashed),
 * as someone with the directory could.
 */
export async function writeManyVmasCheckpoint(dir: string, count: number): Promise<DumpedTask> {
  const task = makeTask();
  await fsp.writeFile(path.join(dir, PAGES_FILE), patternBytes(pagesCount(task) * 4096, 99));
  await writeCheckpoint(dir, task);
  const at = task.vmas.findIndex((v) => v.name === '[heap]') + 1;
  task.vmas = [...task.vmas.slice(0, at), ...manyVmas(count), ...task.vmas.slice(at)];
  const mm = encodeTask(task).find((img) => img.name === imageName.mm(task.pid))!;
  await fsp.writeFile(path.join(dir, mm.name), mm.data);
  await recomputeManifest(dir);
  return task;
}
