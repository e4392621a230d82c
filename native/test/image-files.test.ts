/**
 * The files a checkpoint is made of, as the kernel sees them, and the restore's one read of its pages.
 *
 * Every file a dump writes is a regular file of mode 0600 whatever the umask (plain, short freeze,
 * vm_readv): the memory of a process is no one else's to read. A restore fills the stub from the pages
 * image it verified, in one pass from one open: a pages image swapped for a symlink between the reader's
 * check and the fill (to a file with the very same bytes, so no checksum could tell) is refused by the
 * open itself (O_NOFOLLOW: ELOOP), and one swapped for another regular file fails the fill's own hash
 * (ECHECKSUM); neither leaves a stub behind.
 */
import * as fs from 'fs';
import * as path from 'path';
import { readVerified, restoreVerified } from '../../checkpoint';
import { checkpoint, cleanup, expectKilledByDump, makeTempDir, processesRunning, startVictim, waitForProgress } from './harness';

jest.setTimeout(60_000);
afterEach(cleanup);

describe('image files are private in every mode', () => {
  let umask = 0;
  beforeEach(() => {
    umask = process.umask(0); // the most permissive: only the modes the writers ask for remain
  });
  afterEach(() => {
    process.umask(umask);
  });

  it.each([
    ['plain', {}],
    ['leave-running (short freeze)', { leaveRunning: true }],
    ['vm_readv', { method: 'vm_readv' as const }],
  ])('%s: every file is regular, 0600, ours', async (_what, opts) => {
    const v = await startVictim('sleeper');
    await waitForProgress(v.workdir, 0, 'the sleeper', 1);
    const cp = await checkpoint(v, opts);
    if (!('leaveRunning' in opts)) await expectKilledByDump(v);
    const names = fs.readdirSync(cp.dir);
    expect(names).toEqual(expect.arrayContaining(['pages-1.img', 'cryopod-manifest.json', `core-${v.pid}.img`]));
    for (const name of names) {
      const st = fs.lstatSync(path.join(cp.dir, name));
      expect({ name, regular: st.isFile(), mode: (st.mode & 0o7777).toString(8), uid: st.uid, links: st.nlink }).toEqual({
        name, regular: true, mode: '600', uid: process.getuid!(), links: 1,
      });
    }
  });
});

describe('the restore fills only the bytes it verified, from the one file it opened', () => {
  async function checkpointed(): Promise<string> {
    const v = await startVictim('sleeper');
    await waitForProgress(v.workdir, 0, 'the sleeper', 1);
    const cp = await checkpoint(v);
    await expectKilledByDump(v);
    return cp.dir;
  }

  it('a pages image swapped for a symlink after the check (same bytes): ELOOP, no stub left', async () => {
    const dir = await checkpointed();
    const cp = await readVerified(dir);
    const pages = path.join(dir, 'pages-1.img');
    const elsewhere = path.join(makeTempDir('img-elsewhere'), 'pages-copy');
    fs.copyFileSync(pages, elsewhere);
    fs.unlinkSync(pages);
    fs.symlinkSync(elsewhere, pages);
    const stubsBefore = processesRunning('cryopod-stub').length;
    const err = await restoreVerified(cp).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err).toMatchObject({ code: 'ELOOP' });
    expect(err?.message).toContain('pages-1.img');
    expect(processesRunning('cryopod-stub').length).toBe(stubsBefore);
  });

  it('a pages image replaced by another regular file after the check: ECHECKSUM from the fill, no stub left', async () => {
    const dir = await checkpointed();
    const cp = await readVerified(dir);
    const pages = path.join(dir, 'pages-1.img');
    const other = Buffer.alloc(fs.statSync(pages).size, 0x5a);
    const tmp = path.join(dir, 'swap.tmp');
    fs.writeFileSync(tmp, other);
    fs.renameSync(tmp, pages);
    const stubsBefore = processesRunning('cryopod-stub').length;
    const err = await restoreVerified(cp).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err).toMatchObject({ code: 'ECHECKSUM' });
    expect(err?.message).toMatch(/pages-1\.img: blake3 is [0-9a-f]{64}, the manifest says [0-9a-f]{64}/);
    expect(processesRunning('cryopod-stub').length).toBe(stubsBefore);
  });
});
