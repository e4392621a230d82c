import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { SEAL_FILE } from '../images/seal';
import { FileImageStore } from './fs-store';
import { openStore } from './open-store';
import { storeContract } from './test/contract';
import { keyPair, makeCheckpoint, tempDir } from './test/fixture';

let root: string;
beforeAll(async () => {
  root = await tempDir('cryopod-fsstore-');
});
afterAll(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

describe('file store: the store contract', () => {
  storeContract(() => ({
    open: (opts) => openStore(`file://${root}`, opts),
    raw: {
      read: (key, file) => fsp.readFile(path.join(root, key, file)),
      // Rewritten in place as an attacker with write access would, keeping the name.
      write: async (key, file, data) => {
        await fsp.rm(path.join(root, key, file), { force: true });
        await fsp.writeFile(path.join(root, key, file), data);
      },
      remove: (key, file) => fsp.rm(path.join(root, key, file)),
      leavePartial: async (key) => {
        const dir = path.join(root, path.dirname(key), `.partial-${path.basename(key)}-0123456789ab`);
        await fsp.mkdir(path.join(dir, 'app'), { recursive: true });
        await fsp.writeFile(path.join(dir, 'app', 'pages-1.img'), 'half');
      },
    },
  }));
});

describe('file store: the root is never left', () => {
  test('files and directories are private: 0700 and 0600', async () => {
    const store = new FileImageStore(root);
    const src = path.join(root, '..', path.basename(root) + '-src');
    await makeCheckpoint(src, { key: keyPair().privateKey });
    await store.upload('perm/one', src);
    expect((await fsp.stat(path.join(root, 'perm', 'one'))).mode & 0o777).toBe(0o700);
    expect((await fsp.stat(path.join(root, 'perm', 'one', 'app'))).mode & 0o777).toBe(0o700);
    expect((await fsp.stat(path.join(root, 'perm', 'one', 'app', 'pages-1.img'))).mode & 0o777).toBe(0o600);
    expect((await fsp.stat(path.join(root, 'perm', 'one', SEAL_FILE))).mode & 0o777).toBe(0o600);
    await fsp.rm(src, { recursive: true, force: true });
  });

  test('a symlinked directory on the way is refused for upload, download, read and remove', async () => {
    const outside = await tempDir('cryopod-outside-');
    const src = path.join(outside, 'src');
    await makeCheckpoint(src, { key: keyPair().privateKey });
    await fsp.symlink(outside, path.join(root, 'evil'));
    const store = new FileImageStore(root);
    await expect(store.upload('evil/x', src)).rejects.toMatchObject({ reason: 'OutsideRoot' });
    await fsp.mkdir(path.join(outside, 'x'));
    await fsp.cp(src, path.join(outside, 'y'), { recursive: true });
    await expect(store.download('evil/y', path.join(outside, 'dl'))).rejects.toMatchObject({ reason: 'OutsideRoot' });
    await expect(store.readFile('evil/y', 'pod.json')).rejects.toMatchObject({ reason: 'OutsideRoot' });
    await expect(store.remove('evil/y')).rejects.toMatchObject({ reason: 'OutsideRoot' });
    expect(await store.exists('evil/y')).toBe(false);
    await expect(fsp.stat(path.join(outside, 'y', 'pod.json'))).resolves.toBeTruthy();
    await fsp.rm(outside, { recursive: true, force: true });
  });

  test('a symlinked file inside a checkpoint is not followed', async () => {
    const store = new FileImageStore(root);
    const src = path.join(root, '..', path.basename(root) + '-src2');
    await makeCheckpoint(src, { key: keyPair().privateKey });
    await store.upload('links/one', src);
    await fsp.rm(path.join(root, 'links', 'one', 'pod.json'));
    await fsp.symlink('/etc/passwd', path.join(root, 'links', 'one', 'pod.json'));
    await expect(store.readFile('links/one', 'pod.json')).rejects.toMatchObject({ reason: 'OutsideRoot' });
    await expect(store.download('links/one', path.join(src, '..', path.basename(src) + '-dl'))).rejects.toThrow(/neither a regular file nor a directory/);
    await fsp.rm(src, { recursive: true, force: true });
  });

  test('keys that could escape are refused', () => {
    const store = new FileImageStore(root);
    for (const k of ['..', 'a/../b', '/abs', 'a//b', '.hidden', '']) expect(() => store.urlOf(k)).toThrow(/not one or more plain names/);
  });
});
