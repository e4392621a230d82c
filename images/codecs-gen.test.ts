import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type * as Protobuf from 'protobufjs';
import { codecsSource } from './codecs-gen';
import { Codec, loadRoot, protoDigest } from './proto';
import { makeTask, makeThreadedTask } from './test/test-fixture';
import { encodeTask } from './encode';

/** The generated module, written as the build writes it and required (inside jest's sandbox, like the rest). */
function generated(root: Protobuf.Root): { protoDigest: string; types: Record<string, Codec> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'codecs-'));
  const file = path.join(dir, 'codecs.js');
  const source = codecsSource(root, protoDigest()).replace("require('protobufjs/minimal')", `require(${JSON.stringify(require.resolve('protobufjs/minimal'))})`);
  fs.writeFileSync(file, source);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('codecs generated at build time (codecs-gen.ts)', () => {
  const root = loadRoot();
  const gen = generated(root);
  // Every entry the writer makes for a task with threads, files and sigactions, decoded and encoded back.
  const images = [...encodeTask(makeTask()), ...encodeTask(makeThreadedTask())];

  it('carry the digest of the .proto files they were made from, and every message type', () => {
    expect(gen.protoDigest).toBe(protoDigest());
    for (const name of ['core_entry', 'mm_entry', 'vma_entry', 'pagemap_entry', 'file_entry', 'seccomp_entry']) {
      expect(gen.types[name]?.name).toBe(name);
    }
  });

  it('decode, convert and encode exactly as protobufjs reflection does, on every image the writer makes', () => {
    const byKind: Record<string, string> = { 'core-': 'core_entry', 'mm-': 'mm_entry', 'ids-': 'task_kobj_ids_entry', 'fs-': 'fs_entry', 'pstree': 'pstree_entry', 'inventory': 'inventory_entry', 'fdinfo-': 'fdinfo_entry', 'files': 'file_entry' };
    let checked = 0;
    for (const img of images) {
      const prefix = Object.keys(byKind).find((p) => img.name.startsWith(p));
      if (prefix === undefined) continue;
      const name = byKind[prefix];
      const refl = root.lookupType(name);
      const ours = gen.types[name];
      // The entries after the two magics (and, for pagemap-like files, nothing else is framed here).
      const buf = img.data;
      for (let off = 8; off < buf.length; ) {
        const len = buf.readUInt32LE(off);
        const bytes = buf.subarray(off + 4, off + 4 + len);
        off += 4 + len;
        const opts = { longs: String, enums: Number, defaults: false, arrays: true };
        const a = refl.toObject(refl.decode(bytes), opts);
        const b = ours.toObject(ours.decode(bytes), opts);
        expect(b).toStrictEqual(a);
        expect(ours.verify(a)).toBe(refl.verify(a));
        expect(Buffer.from(ours.encode(ours.decode(bytes)).finish())).toEqual(Buffer.from(refl.encode(refl.decode(bytes)).finish()));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(10);
  });

  it('refuse what reflection refuses: a message that does not verify, bytes that do not decode', () => {
    const refl = root.lookupType('vma_entry');
    const ours = gen.types.vma_entry;
    const bad = { start: 'not a number' };
    expect(ours.verify(bad)).toBe(refl.verify(bad));
    expect(ours.verify(bad)).not.toBeNull();
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(() => refl.decode(garbage)).toThrow();
    expect(() => ours.decode(garbage)).toThrow();
  });
});
