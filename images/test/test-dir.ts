/**
 * Test helpers around a checkpoint directory: make one from the fixture, and re-write the manifest
 * after a test damages a file on purpose, so that the structural check (not the checksum) is what
 * the test sees fire.
 */

import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DumpedTask } from '../../native/lib/types';
import { MANIFEST_FILE } from '../magic';
import { hashFile, hashFileAs, hashFileChunks, loadManifest, writeManifest } from '../manifest';
import { makeTask, writePages } from './test-fixture';
import { writeCheckpoint } from '../write';
import { readCheckpoint } from '../read';
import { ImageError } from '../errors';

export async function tempDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'cryopod-images-'));
}

export async function removeDir(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
}

export async function makeCheckpoint(task: DumpedTask = makeTask()): Promise<{ dir: string; task: DumpedTask; pages: Buffer }> {
  const dir = await tempDir();
  const pages = await writePages(dir, task);
  await writeCheckpoint(dir, task);
  return { dir, task, pages };
}

/** Re-computes size and hash of every listed file (the files that still exist), each as it is listed (sha256 or blake3). */
export async function recomputeManifest(dir: string): Promise<void> {
  const manifest = await loadManifest(dir);
  for (const f of manifest.files) {
    f.size = (await fsp.stat(path.join(dir, f.name))).size;
    if (f.chunkBlake3 !== undefined) ({ root: f.blake3, chunks: f.chunkBlake3 } = await hashFileChunks(path.join(dir, f.name), f.chunkBytes as number));
    else if (f.blake3 !== undefined) f.blake3 = await hashFileAs(path.join(dir, f.name), f);
    else f.sha256 = await hashFile(path.join(dir, f.name));
  }
  await writeManifest(dir, manifest);
}

export async function editManifest(dir: string, edit: (m: Record<string, unknown>) => void): Promise<void> {
  const file = path.join(dir, MANIFEST_FILE);
  const m = JSON.parse(await fsp.readFile(file, 'utf8')) as Record<string, unknown>;
  edit(m);
  await fsp.writeFile(file, JSON.stringify(m));
}

/** The ImageError readCheckpoint throws for a damaged checkpoint (fails the test if it reads it). */
export async function readFailure(dir: string): Promise<ImageError> {
  try {
    await readCheckpoint(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(ImageError);
    return err as ImageError;
  }
  throw new Error('readCheckpoint succeeded on a damaged checkpoint');
}
