/**
 * Open files held by several fds (OpenFile.shareId): one file_entry in files.img that every holder's
 * fdinfo_entry refers to, in one task and across the tree, read back with the same shareIds; crit
 * decodes it; an fd that claims to share the open file of another kind is refused.
 */
import { execFile } from 'child_process';
import * as path from 'path';
import { promisify } from 'util';
import { DumpedTree } from '../native/lib/types';
import { unframeImage } from './codec';
import { encodeTree } from './encode';
import { readCheckpoint, writeCheckpoint } from './index';
import { makeTree, writeTreePages } from './test/test-fixture';
import { removeDir, tempDir } from './test/test-dir';

const run = promisify(execFile);

/** makeTree() with its log file (fd 2) one open file in the root (also dup'd at fd 9) and in worker-a. */
function sharedTree(): DumpedTree {
  const tree = makeTree();
  const [root, a] = tree.tasks;
  root.files[2].shareId = 1;
  root.files.push({ ...root.files[2], fd: 9, cloexec: true });
  a.files[2] = { ...root.files[2], fd: 2, cloexec: false };
  return tree;
}

const fileEntries = (tree: DumpedTree): number => unframeImage('files.img', 'FILES', encodeTree(tree).find((i) => i.name === 'files.img')!.data).length;

describe('shared open files', () => {
  let dir = '';
  afterEach(async () => removeDir(dir));

  it('are one file_entry for every holder, read back with the same shareIds', async () => {
    const tree = sharedTree();
    const plain = sharedTree();
    for (const t of plain.tasks) for (const f of t.files) delete f.shareId;
    expect(fileEntries(tree)).toBe(fileEntries(plain) - 2);

    dir = await tempDir();
    await writeTreePages(dir, tree);
    await writeCheckpoint(dir, tree);
    const back = await readCheckpoint(dir);
    expect(back.tree.tasks).toStrictEqual(tree.tasks);

    const fdinfo = async (n: number): Promise<Array<{ id: number; fd: number }>> =>
      JSON.parse((await run('/usr/bin/python3', ['/usr/bin/crit', 'decode', '-i', path.join(dir, `fdinfo-${n}.img`)])).stdout).entries;
    const rootFds = await fdinfo(1);
    const aFds = await fdinfo(2);
    const id = rootFds.find((e) => e.fd === 2)!.id;
    expect(rootFds.find((e) => e.fd === 9)!.id).toBe(id);
    expect(aFds.find((e) => e.fd === 2)!.id).toBe(id);
  });

  it('of two kinds are refused', () => {
    const tree = sharedTree();
    tree.tasks[0].files[0].shareId = 1;
    expect(() => encodeTree(tree)).toThrow(/files\[2\] \(fd 2\) \(kind reg\) shares its open file \(shareId 1\) with one of kind devnull/);
  });

  it('with a shareId that is not a positive integer are refused', () => {
    const tree = sharedTree();
    tree.tasks[0].files[2].shareId = 0;
    expect(() => encodeTree(tree)).toThrow(/shareId 0 is not a positive integer/);
  });
});
