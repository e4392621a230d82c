/** The operator's image locations with an image store configured (a file:// store here: real files). */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { SEAL_FILE } from '../images/seal';
import { openStore } from '../store';
import { keyPair, makeCheckpoint, tempDir } from '../store/test/fixture';
import { Locations } from './image-locations';
import { ImageStore, StorageError } from './storage';

let tmp: string;
const signer = keyPair();
beforeEach(async () => {
  tmp = await tempDir('cryopod-locations-');
});
afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

async function published(key: string, opts: { sign?: boolean } = {}): Promise<{ locations: Locations; url: string; root: string }> {
  const root = path.join(tmp, 'store');
  const store = openStore(`file://${root}`);
  const src = path.join(tmp, `src-${key.replace('/', '-')}`);
  await makeCheckpoint(src, { key: opts.sign === false ? undefined : signer.privateKey });
  await store.upload(key, src);
  const locations = new Locations(new ImageStore(path.join(tmp, 'shared')), { store, trustedKeys: [signer.publicKey], allowUnsigned: false });
  return { locations, url: store.urlOf(key), root };
}

test('pod.json is read after its seal is verified; a rewritten pod.json or an unsigned seal is refused', async () => {
  const { locations, url, root } = await published('team-a/ckpt-1');
  expect((await locations.readPod(url, 'team-a')).kind).toBe('Pod');
  await fsp.writeFile(path.join(root, 'team-a', 'ckpt-1', 'pod.json'), JSON.stringify({ kind: 'Pod', spec: { containers: [{ name: 'app', image: 'evil' }] } }));
  await expect(locations.readPod(url, 'team-a')).rejects.toThrow(/pod\.json.*does not match the seal/);
  const unsigned = await published('team-a/ckpt-2', { sign: false });
  await expect(unsigned.locations.readPod(unsigned.url, 'team-a')).rejects.toThrow(/not signed; refusing it/);
});

test('remove acts on the store, only for a location of the object\'s own namespace', async () => {
  const { locations, url, root } = await published('team-a/ckpt-3');
  await expect(locations.remove(url, 'team-b')).rejects.toThrow(StorageError);
  await expect(locations.remove(`${url}/../../other`, 'team-a')).rejects.toThrow(StorageError);
  expect(await locations.remove(url, 'team-a')).toBe('removed');
  await expect(fsp.stat(path.join(root, 'team-a', 'ckpt-3', SEAL_FILE))).rejects.toThrow(/ENOENT/);
  expect(await locations.remove(url, 'team-a')).toBe('absent');
});
