/**
 * Paths inside a storage root that never leave it: every component below the root is lstat'ed and
 * must be a real directory (a symlink is refused, even one pointing back inside), the last one is
 * opened with O_NOFOLLOW, new files with O_EXCL (never reusing or truncating what is there) and
 * mode 0600, new directories 0700: images hold process memory.
 */
import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { StoreError } from './errors';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

function relParts(root: string, rel: string): string[] {
  const parts = rel.split('/');
  if (rel === '' || parts.some((p) => p === '' || p === '.' || p === '..')) throw new StoreError('OutsideRoot', `${rel} is not a plain relative path inside ${root}`);
  return parts;
}

/** Checks that each directory from root down to (excluding) the last component is a real directory; ENOENT passes through. */
async function checkDirs(root: string, parts: string[]): Promise<string> {
  let cur = root;
  for (const p of parts) {
    cur = path.join(cur, p);
    const st = await fsp.lstat(cur);
    if (!st.isDirectory()) throw new StoreError('OutsideRoot', `${cur} is a symlink or not a directory: refusing to follow it out of ${root}`);
  }
  return cur;
}

/** The directory root/rel, if it exists as a real directory all the way down; undefined if it does not exist. */
export async function dirInside(root: string, rel: string): Promise<string | undefined> {
  try {
    return await checkDirs(root, relParts(root, rel));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Creates root/rel (0700) one component at a time, refusing symlinks; returns its path. */
export async function mkdirInside(root: string, rel: string): Promise<string> {
  let cur = root;
  for (const p of relParts(root, rel)) {
    cur = path.join(cur, p);
    try {
      await fsp.mkdir(cur, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = await fsp.lstat(cur);
    if (!st.isDirectory()) throw new StoreError('OutsideRoot', `${cur} is a symlink or not a directory: refusing to follow it out of ${root}`);
  }
  return cur;
}

/** Opens root/rel for reading: directories checked, the file itself not followed if a symlink. */
export async function openInside(root: string, rel: string): Promise<FileHandle> {
  const parts = relParts(root, rel);
  await checkDirs(root, parts.slice(0, -1));
  const fh = await fsp.open(path.join(root, rel), O_RDONLY | O_NOFOLLOW).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP') throw new StoreError('OutsideRoot', `${path.join(root, rel)} is a symlink: refused`, { cause: err });
    throw err;
  });
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    throw new StoreError('OutsideRoot', `${path.join(root, rel)} is not a regular file`);
  }
  return fh;
}

/** Creates a new file root/rel (0600, O_EXCL|O_NOFOLLOW), its directories first. */
export async function createInside(root: string, rel: string): Promise<FileHandle> {
  const parts = relParts(root, rel);
  if (parts.length > 1) await mkdirInside(root, parts.slice(0, -1).join('/'));
  return fsp.open(path.join(root, rel), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
}

export async function syncDir(dir: string): Promise<void> {
  const dh = await fsp.open(dir, O_RDONLY);
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
