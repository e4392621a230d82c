/**
 * ghosts.ts: ghost-file-<id>.img and remap-fpath.img written and read back, and one negative test per
 * error the reader reports (images come from storage another party may have touched).
 */
import { frameImage } from './codec';
import { ImageError } from './errors';
import { decodeGhostFile, GhostImages, MAX_GHOST_BYTES, readGhosts } from './ghosts';
import { encodeEntry, messages } from './proto';

function images(): Map<string, Buffer> {
  const g = new GhostImages();
  const id = g.add(7, { mode: 0o100640, data: Buffer.from('hello ghost'), dev: 64768, ino: 1234 }, 'fd 3');
  g.link(9, id);
  g.add(11, { mode: 0o100600, data: Buffer.alloc(0) }, 'fd 4');
  return new Map(g.encode().map((i) => [i.name, i.data]));
}

async function read(files: Map<string, Buffer>): ReturnType<typeof readGhosts> {
  return readGhosts((n) => files.has(n), async (n) => files.get(n)!);
}

function errorOf(fn: () => unknown): ImageError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ImageError) return e;
    throw e;
  }
  throw new Error('expected an ImageError');
}

test('every remapped file id gets its ghost back: mode and contents, one ghost shared by two ids', async () => {
  const files = images();
  expect([...files.keys()]).toEqual(['remap-fpath.img', 'ghost-file-1.img', 'ghost-file-2.img']);
  const got = await read(files);
  expect([...got.keys()]).toEqual([7, 9, 11]);
  expect(got.get(7)).toEqual({ ghostId: 1, mode: 0o100640, data: Buffer.from('hello ghost') });
  expect(got.get(9)!.ghostId).toBe(1);
  expect(got.get(11)).toEqual({ ghostId: 2, mode: 0o100600, data: Buffer.alloc(0) });
  expect((await read(new Map())).size).toBe(0);
});

test('EMAGIC, ETRUNC (entry, size), ETOOBIG, EDECODE (chunked) from a ghost file', () => {
  const good = images().get('ghost-file-1.img')!;
  const bad = Buffer.from(good);
  bad.writeUInt32LE(0x12345678, 4);
  expect(errorOf(() => decodeGhostFile('g', bad))).toMatchObject({ code: 'EMAGIC' });
  expect(errorOf(() => decodeGhostFile('g', good.subarray(0, 14)))).toMatchObject({ code: 'ETRUNC' });
  expect(errorOf(() => decodeGhostFile('g', good.subarray(0, good.length - 1))).message).toMatch(/size says 11 bytes, the image holds 10/);
  const head = (entry: object, data: Buffer): Buffer => {
    const e = encodeEntry(messages().ghostFile, entry);
    const h = Buffer.alloc(12);
    h.writeUInt32LE(0x54564319, 0);
    h.writeUInt32LE(0x52583605, 4);
    h.writeUInt32LE(e.length, 8);
    return Buffer.concat([h, Buffer.from(e), data]);
  };
  expect(errorOf(() => decodeGhostFile('g', head({ uid: 0, gid: 0, mode: 0o100600 }, Buffer.alloc(MAX_GHOST_BYTES + 1))))).toMatchObject({ code: 'ETOOBIG' });
  expect(errorOf(() => decodeGhostFile('g', head({ uid: 0, gid: 0, mode: 0o100600, chunks: true }, Buffer.alloc(0))))).toMatchObject({ code: 'EDECODE' });
});

test('EMISSING (a remap to an unlisted ghost), EDECODE (a LINKED remap, a file id remapped twice)', async () => {
  const files = images();
  files.delete('ghost-file-2.img');
  await expect(read(files)).rejects.toMatchObject({ code: 'EMISSING', file: 'ghost-file-2.img' });
  const remap = (entries: object[]): Map<string, Buffer> =>
    new Map([...images(), ['remap-fpath.img', frameImage('REMAP_FPATH', entries.map((e) => encodeEntry(messages().remapFpath, e)))]]);
  await expect(read(remap([{ orig_id: 7, remap_id: 1, remap_type: 0 }]))).rejects.toMatchObject({ code: 'EDECODE', message: expect.stringMatching(/remap type 0/) });
  await expect(read(remap([{ orig_id: 7, remap_id: 1, remap_type: 1 }, { orig_id: 7, remap_id: 2, remap_type: 1 }]))).rejects.toMatchObject({ code: 'EDECODE', message: expect.stringMatching(/remapped twice/) });
});
