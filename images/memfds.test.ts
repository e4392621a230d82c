/**
 * memfds.ts: memfd-inode.img, pagemap-shmem-<id>.img and the memfd's pages file written and read back,
 * and one negative test per error the reader reports.
 */
import { frameImage } from './codec';
import { MemfdImages, readMemfds } from './memfds';
import { encodeEntry, messages } from './proto';

function images(tasks = 1): Map<string, Buffer> {
  const m = new MemfdImages();
  m.add({ id: 5, name: 'cryopod-a', seals: 7, data: Buffer.from('x'.repeat(5000)) }, 'fd 3');
  m.add({ id: 6, name: 'cryopod-empty', seals: 0, data: Buffer.alloc(0) }, 'fd 4');
  return new Map(m.encode(tasks).map((i) => [i.name, i.data]));
}

const read = (files: Map<string, Buffer>, tasks = 1): ReturnType<typeof readMemfds> => readMemfds((n) => files.has(n), async (n) => files.get(n)!, tasks);

test('each memfd gets its contents back by inode_id; its pages file is one of its own, above the tasks', async () => {
  const files = images();
  expect([...files.keys()]).toEqual(['memfd-inode.img', 'pagemap-shmem-5.img', 'pages-2.img', 'pagemap-shmem-6.img', 'pages-3.img']);
  expect(files.get('pages-2.img')!.length).toBe(8192);
  const got = await read(files);
  expect(got.contents.get(5)).toEqual(Buffer.from('x'.repeat(5000)));
  expect(got.contents.get(6)).toEqual(Buffer.alloc(0));
  expect([...got.pagesFiles]).toEqual(['pages-2.img', 'pages-3.img']);
  expect((await read(new Map())).contents.size).toBe(0);
});

test('EDECODE (a task\'s pages file, a wrong run), EMISSING (pagemap, pages), ETRUNC (short pages)', async () => {
  await expect(read(images(1), 2)).rejects.toMatchObject({ code: 'EDECODE', message: expect.stringMatching(/pages_id 2 is a task's pages file/) });
  const noMap = images();
  noMap.delete('pagemap-shmem-6.img');
  await expect(read(noMap)).rejects.toMatchObject({ code: 'EMISSING', file: 'pagemap-shmem-6.img' });
  const noPages = images();
  noPages.delete('pages-2.img');
  await expect(read(noPages)).rejects.toMatchObject({ code: 'EMISSING', file: 'pages-2.img' });
  const short = images();
  short.set('pages-2.img', Buffer.alloc(4096));
  await expect(read(short)).rejects.toMatchObject({ code: 'ETRUNC', file: 'pages-2.img' });
  const wrongRun = images();
  const msg = messages();
  wrongRun.set('pagemap-shmem-5.img', frameImage('PAGEMAP', [encodeEntry(msg.pagemapHead, { pages_id: 2 }), encodeEntry(msg.pagemapEntry, { vaddr: 4096, nr_pages: 2, flags: 4 })]));
  await expect(read(wrongRun)).rejects.toMatchObject({ code: 'EDECODE', message: expect.stringMatching(/one present run of 2 pages from offset 0/) });
});
