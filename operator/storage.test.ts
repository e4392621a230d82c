import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ImageStore, StorageError } from './storage';

describe('ImageStore', () => {
  let tmp: string;
  let store: ImageStore;
  let outside: string;
  const url = (p: string) => pathToFileURL(p).href;

  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cryopod-store-'));
    store = new ImageStore(path.join(tmp, 'root'));
    outside = path.join(tmp, 'outside');
    await fs.mkdir(path.join(tmp, 'root', 'ns', 'c1-uid'), { recursive: true });
    await fs.mkdir(path.join(tmp, 'root', 'other'), { recursive: true });
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, 'precious'), 'x');
    await fs.writeFile(path.join(tmp, 'root', 'ns', 'c1-uid', 'pages-1.img'), 'pages');
  });
  afterEach(() => fs.rm(tmp, { recursive: true, force: true }));

  test('removes a directory inside ROOT/NAMESPACE, then reports it absent', async () => {
    const loc = url(path.join(tmp, 'root', 'ns', 'c1-uid'));
    expect(await store.remove(loc, 'ns')).toBe('removed');
    await expect(fs.stat(path.join(tmp, 'root', 'ns', 'c1-uid'))).rejects.toThrow(/ENOENT/);
    expect(await store.remove(loc, 'ns')).toBe('absent');
  });

  test.each([
    ['a path outside the root', () => url(outside)],
    ['.. out of the root', () => `file://${tmp}/root/ns/../../outside`],
    ['the namespace dir itself', () => url(path.join(tmp, 'root', 'ns'))],
    ['another namespace', () => url(path.join(tmp, 'root', 'other'))],
    ['an s3 location', () => 's3://bucket/x'],
    ['not a URI', () => '/var/lib/x'],
  ])('refuses %s and deletes nothing', async (_what, loc) => {
    await expect(store.remove(loc(), 'ns')).rejects.toBeInstanceOf(StorageError);
    expect(await fs.readFile(path.join(outside, 'precious'), 'utf8')).toBe('x');
    expect(await fs.readdir(path.join(tmp, 'root', 'ns'))).toEqual(['c1-uid']);
  });

  test('refuses a symlink that leads out of the root', async () => {
    await fs.symlink(outside, path.join(tmp, 'root', 'ns', 'evil'));
    await expect(store.remove(url(path.join(tmp, 'root', 'ns', 'evil')), 'ns')).rejects.toThrow(/symlink/);
    await fs.symlink(outside, path.join(tmp, 'root', 'ns', 'evil2'));
    await expect(store.remove(url(path.join(tmp, 'root', 'ns', 'evil2', 'x')), 'ns')).rejects.toThrow(/symlink|outside/);
    expect(await fs.readFile(path.join(outside, 'precious'), 'utf8')).toBe('x');
  });

  test('accepts a location named by the real path of a symlinked root', async () => {
    await fs.symlink(path.join(tmp, 'root'), path.join(tmp, 'link'));
    const viaLink = new ImageStore(path.join(tmp, 'link'));
    expect(await viaLink.remove(url(path.join(tmp, 'root', 'ns', 'c1-uid')), 'ns')).toBe('removed');
    await expect(viaLink.remove(url(outside), 'ns')).rejects.toThrow(/is outside/);
  });

  test('reads pod.json; refuses a symlinked or missing one', async () => {
    const dir = path.join(tmp, 'root', 'ns', 'c1-uid');
    await fs.writeFile(path.join(dir, 'pod.json'), JSON.stringify({ spec: { containers: [] } }));
    expect(await store.readPod(url(dir), 'ns')).toEqual({ spec: { containers: [] } });
    await fs.rm(path.join(dir, 'pod.json'));
    await expect(store.readPod(url(dir), 'ns')).rejects.toThrow(/ENOENT/);
    await fs.symlink(path.join(outside, 'precious'), path.join(dir, 'pod.json'));
    await expect(store.readPod(url(dir), 'ns')).rejects.toThrow(/not a regular file/);
  });
});
