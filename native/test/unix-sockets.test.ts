/**
 * Unix sockets as a kind of the file layer (issue 10): socketpairs (stream, seqpacket, datagram) with
 * bytes queued in both directions, and listeners on a path and in the abstract namespace. The
 * unix-sockets victim is dumped, killed, restored, and checks every queued message (boundaries too),
 * new traffic both ways and that both listeners accept. The images hold them as CRIU's unix_sk_entry,
 * which crit decodes.
 */
import { execFileSync } from 'child_process';
import { readFileSync } from 'fs';
import * as path from 'path';
import { checkProcess, dumpProcess, restoreProcess } from '../../checkpoint';
import { readCheckpoint } from '../../images';
import { cleanup, isAlive, makeTempDir, requestCheck, startProgram, startVictim, trackPid, waitGone } from './harness';
import { withOutsideUnixClient } from './unix-outside';

jest.setTimeout(60_000);
afterEach(cleanup);

test('socketpairs keep their queued bytes both ways and listeners accept after restore', async () => {
  const v = await startVictim('unix-sockets');
  const images = makeTempDir('img-unix');
  await dumpProcess({ pid: v.pid, dir: images });
  await waitGone(v.pid, 'the dumped unix-sockets victim');

  const { task } = await readCheckpoint(images);
  const unix = task.files.filter((f) => f.kind === 'unix');
  expect(unix).toHaveLength(8);
  const queued = unix.flatMap((f) => (f.state?.items ?? []).map((m) => m.data!.toString()));
  expect(queued.sort()).toEqual(['dgram', 'one', 'ping from a', 'pong from b', 'two']);
  const names = unix.filter((f) => f.state!.num.listening === 1).map((f) => [f.state!.text.name, f.state!.num.abstract]);
  expect(names).toEqual([[path.join(v.workdir, 'srv.sock'), 0], [`cryopod-unix-${v.pid}`, 1]]);
  const files = execFileSync('/usr/bin/crit', ['decode', '-i', path.join(images, 'files.img'), '--pretty'], { encoding: 'utf8' });
  expect(files).toContain('"usk"');
  expect(files).toContain('"peer"');

  const r = await restoreProcess({ dir: images });
  trackPid(r.pid);
  expect(await requestCheck(v.workdir)).toBe('PASS');
});

test('a unix socket connected to a process outside the dump is refused by name, and the process runs on', async () => {
  await withOutsideUnixClient(async (v) => {
    // The preflight names the object, its peer and who holds the peer (this test process, outside the tree).
    const reports = await checkProcess(v.pid);
    const refused = reports.filter((r) => r.verdict === 'refused');
    expect(refused).toHaveLength(1);
    expect(refused[0].kind).toBe('unix');
    expect(refused[0].note).toMatch(new RegExp(`^connected to socket:\\[\\d+\\], held by pid ${process.pid}, outside the dumped tree`));
    await expect(dumpProcess({ pid: v.pid, dir: makeTempDir('img-unix-outside') })).rejects.toMatchObject({
      code: 'EUNSUPPORTED',
      message: expect.stringMatching(new RegExp(`fd ${refused[0].fd} \\(socket:\\[\\d+\\]\\): connected to socket:\\[\\d+\\], held by pid ${process.pid}, outside the dumped tree`)),
    });
    expect(isAlive(v.pid)).toBe(true);
  });
});

test('a unix listener that a process outside the tree holds too is refused by --check and the dump, naming that process', async () => {
  // The parent (outside: only the child is dumped) binds and listens, then forks: both hold the listener.
  const script = `import socket, sys, os, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1] + '/shared.sock')
s.listen()
open(sys.argv[1] + '/parent', 'w').write(str(os.getpid()))
if os.fork() == 0:
    open(sys.argv[1] + '/ready', 'w').write(str(os.getpid()))
time.sleep(600)`;
  const v = await startProgram('unix-shared-listener', '/usr/bin/python3', ['-c', script]);
  const parent = Number(readFileSync(path.join(v.workdir, 'parent'), 'utf8'));
  trackPid(parent);
  const refused = (await checkProcess(v.pid)).filter((r) => r.verdict === 'refused');
  expect(refused.map((r) => [r.kind, r.note])).toEqual([['unix', expect.stringMatching(new RegExp(`^also held by pid ${parent}, outside the dumped tree`))]]);
  await expect(dumpProcess({ pid: v.pid, dir: makeTempDir('img-unix-shared-listener') })).rejects.toMatchObject({
    code: 'EUNSUPPORTED',
    message: expect.stringContaining(`also held by pid ${parent}, outside the dumped tree`),
  });
  expect(isAlive(v.pid)).toBe(true);
});
