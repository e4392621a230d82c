/** The --to/--from progress bar: drawn only on a terminal, in place, ending its line when done. */
import { progressBar } from './remote';

function stream(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const s = { isTTY, text: '', write: (chunk: string) => ((s.text += chunk), true) };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

test('on a terminal: redrawn in place with bytes done / total, a newline once complete', () => {
  const tty = stream(true);
  const bar = progressBar(tty, 'download')!;
  bar({ doneBytes: 512 << 20, totalBytes: 1024 << 20, file: 'app/pages-1.img' });
  expect(tty.text).toBe(`\rdownload [${'#'.repeat(15)}${'.'.repeat(15)}]  50% 512/1024 MiB`);
  bar({ doneBytes: 1024 << 20, totalBytes: 1024 << 20, file: 'cryopod-seal.json' });
  expect(tty.text.endsWith(`\rdownload [${'#'.repeat(30)}] 100% 1024/1024 MiB\n`)).toBe(true);
});

test('not a terminal (a log, a pipe): no bar at all', () => {
  expect(progressBar(stream(false), 'upload')).toBeUndefined();
});
