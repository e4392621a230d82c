import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ImageStore } from './storage';

const UID = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
let root: string;
beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-store-'))));
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

test('layout: <root>/<namespace>/<name>-<uid>/pod.json and one directory per container', () => {
  const s = new ImageStore(root);
  const ref = { namespace: 'team-a', name: 'ckpt.1', uid: UID };
  const file = s.writePodJson(ref, { kind: 'Pod' });
  expect(file).toBe(path.join(fs.realpathSync(root), 'team-a', `ckpt.1-${UID}`, 'pod.json'));
  const dir = s.mkdir(s.containerDir(ref, 'app'));
  fs.writeFileSync(path.join(dir, 'pages-1.img'), Buffer.alloc(4096));
  expect(s.sizeOf(s.checkpointDir(ref))).toBe(4096 + fs.statSync(file).size);
  s.remove(ref);
  expect(fs.existsSync(s.checkpointDir(ref))).toBe(false);
});

test('names that could escape the root are refused', () => {
  const s = new ImageStore(root);
  expect(() => s.checkpointDir({ namespace: '..', name: 'x', uid: UID })).toThrow(/not a valid Kubernetes name/);
  expect(() => s.checkpointDir({ namespace: 'a', name: '../../etc', uid: UID })).toThrow(/not a valid Kubernetes name/);
  expect(() => s.checkpointDir({ namespace: 'a', name: 'x', uid: '../x' })).toThrow(/not a UID/);
  expect(() => s.containerDir({ namespace: 'a', name: 'x', uid: UID }, 'a/b')).toThrow(/not a valid Kubernetes name/);
  expect(() => s.mkdir('/tmp/elsewhere')).toThrow(/outside the storage root/);
});

test('a symlink inside the root that leads outside it is refused', () => {
  const s = new ImageStore(root);
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-outside-'));
  fs.symlinkSync(outside, path.join(root, 'team-a'));
  expect(() => s.writePodJson({ namespace: 'team-a', name: 'x', uid: UID }, {})).toThrow(/outside the storage root/);
  expect(fs.readdirSync(outside)).toEqual([]);
  fs.rmSync(outside, { recursive: true, force: true });
});
