/**
 * writeCheckpoint: puts a dumped task's images beside the pages file the native core wrote, then the
 * manifest. Order matters for crash safety: an old manifest is removed first, every image is fsynced,
 * and the manifest (size + sha256 of every file) is renamed into place last, so a directory with a
 * manifest is a complete checkpoint and one without is not.
 */

import { promises as fsp } from 'fs';
import * as path from 'path';
import { encodeTask } from './encode';
import { ImageError } from './errors';
import { checkPageRuns, checkVmas } from './layout';
import { MANIFEST_FILE, PAGES_FILE, imageName } from './magic';
import { Manifest, ManifestFile, MANIFEST_FORMAT, MANIFEST_VERSION, hashFile, sha256Of, syncDir, writeManifest } from './manifest';
import { DumpedTask } from '../native/lib/types';

async function writeDurably(file: string, data: Buffer): Promise<void> {
  // 0600: images hold process memory and registers, tenant data (DESIGN.md, Images and storage).
  const fh = await fsp.open(file, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
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
 * Writes every image file of `task` into `dir`, which must already hold pages-1.img. Returns the
 * names of all files of the checkpoint (images, pages-1.img, then the manifest) and their total size.
 * Throws ImageError EINVAL / EBOUNDS, before writing anything, for a task the images cannot represent
 * or whose page runs do not fit its VMAs and pages file.
 */
export async function writeCheckpoint(dir: string, task: DumpedTask): Promise<{ files: string[]; bytes: number }> {
  const pagesPath = path.join(dir, PAGES_FILE);
  let pagesBytes: number;
  try {
    pagesBytes = (await fsp.stat(pagesPath)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ImageError('EMISSING', PAGES_FILE, `missing in ${dir}: the native core writes it before the images`, { cause: err });
    }
    throw err;
  }
  if (!Number.isFinite(task.frozenSeconds) || task.frozenSeconds < 0) {
    throw new ImageError('EINVAL', undefined, `frozenSeconds is ${task.frozenSeconds}, not a non-negative number`);
  }
  const names = { mm: imageName.mm(task.pid), pagemap: imageName.pagemap(task.pid), pages: PAGES_FILE };
  checkVmas(task.vmas, names.mm);
  checkPageRuns(task.vmas, task.pages, pagesBytes, names);
  const images = encodeTask(task);

  await fsp.rm(path.join(dir, MANIFEST_FILE), { force: true });
  const listed: ManifestFile[] = [];
  for (const img of images) {
    await writeDurably(path.join(dir, img.name), img.data);
    listed.push({ name: img.name, size: img.data.length, sha256: sha256Of(img.data) });
  }
  await syncFile(pagesPath);
  listed.push({ name: PAGES_FILE, size: pagesBytes, sha256: await hashFile(pagesPath) });
  await syncDir(dir);

  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    pid: task.pid,
    comm: task.comm,
    createdAt: new Date().toISOString(),
    frozenSeconds: task.frozenSeconds,
    files: listed,
  };
  const manifestBytes = await writeManifest(dir, manifest);
  return {
    files: [...listed.map((f) => f.name), MANIFEST_FILE],
    bytes: listed.reduce((sum, f) => sum + f.size, manifestBytes),
  };
}
