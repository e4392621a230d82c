/**
 * writeCheckpoint: puts a dumped task's images beside the pages file the native core wrote, then the
 * manifest. Order matters for crash safety: an old manifest is removed first, every image is fsynced,
 * and the manifest (size + sha256 of every file) is renamed into place last, so a directory with a
 * manifest is a complete checkpoint and one without is not.
 */

import { promises as fsp } from 'fs';
import * as path from 'path';
import { encodeTree, treeOf } from './encode';
import { EntryBudget } from './entry-budget';
import { ImageError } from './errors';
import { checkInheritedRuns, checkPageRuns, checkVmas } from './layout';
import { MAX_VMAS } from './limits';
import { MANIFEST_FILE, imageName, pagesFile } from './magic';
import { Manifest, ManifestFile, MANIFEST_FORMAT, MANIFEST_VERSION, PAGES_CHUNK_BYTES, hashFileChunks, sha256Of, syncDir, writeManifest } from './manifest';
import { checkPipeList, checkPstree, checkShmem, parentIndexes, parentVmas, psTaskOf, writerFail } from './tree';
import { DumpedTask, DumpedTree } from '../native/lib/types';

/**
 * 0600: images hold process memory and registers, tenant data. Written to a temp name created with
 * O_EXCL ('wx') and renamed over the image's name: a file or symlink someone planted there is replaced,
 * never written through or left with its own owner and mode (rename does not follow a symlink), and a
 * checkpoint re-written in place replaces the old images.
 */
async function writeDurably(file: string, data: Buffer): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fh = await fsp.open(tmp, 'wx', 0o600);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

async function syncFile(file: string): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes every image file of a process tree (or of one task, a tree of one without pipes) into `dir`,
 * which must already hold the pages file of each task (pages-<i+1>.img for task i). Returns the names
 * of all files of the checkpoint (images, pages files, then the manifest) and their total size.
 * Throws ImageError EINVAL / EBOUNDS / ETOOBIG, before writing anything, for a tree the images cannot
 * represent or whose page runs do not fit its VMAs and pages files.
 */
export async function writeCheckpoint(dir: string, input: DumpedTask | DumpedTree): Promise<{ files: string[]; bytes: number }> {
  const tree = treeOf(input);
  if (!Array.isArray(tree.tasks) || tree.tasks.length === 0) throw new ImageError('EINVAL', undefined, 'the tree has no task');
  const pagesBytes: number[] = [];
  for (let i = 0; i < tree.tasks.length; i++) {
    const name = pagesFile(i);
    try {
      pagesBytes.push((await fsp.stat(path.join(dir, name))).size);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new ImageError('EMISSING', name, `missing in ${dir}: the native core writes it before the images`, { cause: err });
      }
      throw err;
    }
  }
  if (!Number.isFinite(tree.frozenSeconds) || tree.frozenSeconds < 0) {
    throw new ImageError('EINVAL', undefined, `frozenSeconds is ${tree.frozenSeconds}, not a non-negative number`);
  }
  const single = tree.tasks.length === 1;
  checkPstree(tree.tasks.map(psTaskOf), (code, _file, message) => writerFail(code, undefined, message));
  const parents = parentIndexes(tree.tasks);
  tree.tasks.forEach((task, i) => {
    const names = { mm: imageName.mm(task.pid), pagemap: imageName.pagemap(task.pid), pages: pagesFile(i) };
    try {
      checkVmas(task.vmas, names.mm);
      checkPageRuns(task.vmas, task.pages, pagesBytes[i], names);
      checkInheritedRuns(task.vmas, task.pages, task.inherited ?? [], parentVmas(tree.tasks, parents, i), names);
    } catch (err) {
      // The writer reports layout problems without a file (nothing is written yet), naming the task in a tree.
      if (err instanceof ImageError && !single) throw new ImageError(err.code, err.file, `task ${task.pid}: ${err.message.slice((err.file ?? '').length + 2)}`, { cause: err });
      throw err;
    }
  });
  checkShmem(tree.tasks, (i) => parents[i], writerFail);
  checkPipeList(tree);
  const images = encodeTree(tree);
  // Never write what the reader would refuse: the caps on VMAs and on a checkpoint's entries, counted
  // by the reader's own budget, before anything is on disk.
  const budget = new EntryBudget();
  for (const img of images) {
    if (img.name.startsWith('mm-')) {
      const task = tree.tasks.find((t) => imageName.mm(t.pid) === img.name);
      if (task !== undefined && task.vmas.length > MAX_VMAS) throw new ImageError('ETOOBIG', undefined, `task ${task.pid} has ${task.vmas.length} VMAs, over the cap of ${MAX_VMAS} a restore reads`);
    }
    budget.take(img.name, img.data);
  }

  await fsp.rm(path.join(dir, MANIFEST_FILE), { force: true });
  // All at once: each image is a handful of fs calls (open, write, fsync, close, rename), each a hop
  // through libuv's pool; one after the other, the dump waited for every hop in turn after its last
  // page. Every write is settled before anything is reported, so a failure leaves no image behind
  // the caller's cleanup (the manifest, written last, still comes after every image is durable).
  const listed: ManifestFile[] = images.map((img) => ({ name: img.name, size: img.data.length, sha256: sha256Of(img.data) }));
  const writes = await Promise.allSettled(images.map((img) => writeDurably(path.join(dir, img.name), img.data)));
  const failed = writes.find((w): w is PromiseRejectedResult => w.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  for (let i = 0; i < tree.tasks.length; i++) {
    const pagesPath = path.join(dir, pagesFile(i));
    await syncFile(pagesPath);
    // The dump hashed the image as it wrote it (pagesBlake3, and each chunk's); a model without those
    // digests (made by hand) is hashed here, the same way.
    const t = tree.tasks[i];
    const { root: blake3, chunks: chunkBlake3 } =
      t.pagesBlake3 !== undefined && t.pagesChunkBlake3 !== undefined ? { root: t.pagesBlake3, chunks: t.pagesChunkBlake3 } : await hashFileChunks(pagesPath, PAGES_CHUNK_BYTES);
    listed.push({ name: pagesFile(i), size: pagesBytes[i], blake3, chunkBytes: PAGES_CHUNK_BYTES, chunkBlake3 });
  }
  await syncDir(dir);

  const root = tree.tasks[0];
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    pid: root.pid,
    comm: root.comm,
    createdAt: new Date().toISOString(),
    frozenSeconds: tree.frozenSeconds,
    files: listed,
  };
  const manifestBytes = await writeManifest(dir, manifest);
  return {
    files: [...listed.map((f) => f.name), MANIFEST_FILE],
    bytes: listed.reduce((sum, f) => sum + f.size, manifestBytes),
  };
}
