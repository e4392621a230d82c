/**
 * The entry budget (entry-budget.ts) and the caps it enforces, from both sides: the reader counts every
 * image's entries (VMAs one by one) before decoding it, and the writer refuses to write what the reader
 * would refuse.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { frameImage } from './codec';
import { encodeTask } from './encode';
import { EntryBudget } from './entry-budget';
import { MAX_VMAS } from './limits';
import { PAGES_FILE } from './magic';
import { writeCheckpoint } from './write';
import { manyVmas } from './test/hostile-images';
import { removeDir, tempDir } from './test/test-dir';
import { makeTask, pagesCount, patternBytes } from './test/test-fixture';

test('the budget counts entries across images, VMAs one by one, and names the image that spends it', () => {
  const budget = new EntryBudget(10);
  budget.take('fdinfo-1.img', frameImage('FDINFO', Array.from({ length: 4 }, () => new Uint8Array(0))));
  const task = makeTask(); // 9 VMAs: 1 + 9 entries
  const mm = encodeTask(task).find((i) => i.name === 'mm-4242.img')!;
  expect(() => budget.take(mm.name, mm.data)).toThrow(expect.objectContaining({ code: 'ETOOBIG', file: 'mm-4242.img', message: expect.stringContaining('brings the checkpoint\'s images to 14 entries') }));
});

test('images it does not frame (inventory, pipes-data) are not counted', () => {
  const budget = new EntryBudget(0);
  expect(() => budget.take('inventory.img', Buffer.alloc(8))).not.toThrow();
  expect(() => budget.take('pipes-data.img', Buffer.alloc(8))).not.toThrow();
});

test('the writer refuses a task over MAX_VMAS before writing anything', async () => {
  const dir = await tempDir();
  try {
    const task = makeTask();
    const at = task.vmas.findIndex((v) => v.name === '[heap]') + 1;
    task.vmas = [...task.vmas.slice(0, at), ...manyVmas(MAX_VMAS), ...task.vmas.slice(at)];
    await fsp.writeFile(path.join(dir, PAGES_FILE), patternBytes(pagesCount(task) * 4096, 1));
    await expect(writeCheckpoint(dir, task)).rejects.toMatchObject({ code: 'ETOOBIG', message: `task 4242 has ${MAX_VMAS + 9} VMAs, over the cap of ${MAX_VMAS} a restore reads` });
    expect(await fsp.readdir(dir)).toEqual([PAGES_FILE]);
  } finally {
    await removeDir(dir);
  }
}, 60_000);
