/**
 * Sockets (OpenFile kind 'socket'): written as CRIU writes them (file_entry INETSK + inet_sk_entry,
 * fdinfo_entry INETSK), read back strictly equal, read by Debian's crit, and refused when hostile.
 */

import { execFile } from 'child_process';
import { promises as fsp } from 'fs';
import * as net from 'net';
import * as path from 'path';
import { promisify } from 'util';
import { frameImage, unframeImage } from './codec';
import { encodeTask } from './encode';
import { ImageError, readCheckpoint } from './index';
import { messages } from './proto';
import { formatAddress, socketString } from './socket';
import { DumpedTask, InetSocket, OpenFile } from '../native/lib/types';
import { makeSocketTask } from './test/test-fixture';
import { makeCheckpoint, recomputeManifest, removeDir, readFailure } from './test/test-dir';

const run = promisify(execFile);

async function crit(...args: string[]): Promise<string> {
  const { stdout } = await run('/usr/bin/python3', ['/usr/bin/crit', ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

const failure = readFailure;

/** The fixture's socket fds: 4 (tcp 0.0.0.0:8000), 5 (tcp6 [::]:8443 v6only), 7 (udp), 9 (udp6). */
const sockets = (task: DumpedTask): OpenFile[] => task.files.filter((f) => f.kind === 'socket');

describe('sockets: write + read', () => {
  let dir = '';
  afterEach(async () => removeDir(dir));

  it('round-trips an IPv4 TCP listener, an IPv6 v6only listener and two bound UDP sockets', async () => {
    const made = await makeCheckpoint(makeSocketTask());
    dir = made.dir;
    const { task } = await readCheckpoint(dir);
    expect(task).toStrictEqual(made.task);
    expect(sockets(task).map((f) => f.fd)).toEqual([4, 5, 7, 9]);
    expect(task.files[5].socket).toEqual({
      family: 10, type: 1, protocol: 6, state: 'listen', address: '::', port: 8443, backlog: 4096, reuseaddr: true, reuseport: true, v6only: true,
    });
    // The regular files keep no socket key at all.
    expect(task.files[2]).not.toHaveProperty('socket');
  });

  it('writes one INETSK file_entry per socket, and INETSK fdinfo entries pointing at them', () => {
    const images = encodeTask(makeSocketTask());
    const bytesOf = (name: string): Buffer => images.find((i) => i.name === name)!.data;
    const files = unframeImage('files.img', 'FILES', bytesOf('files.img')).map((b) => messages().file.toObject(messages().file.decode(b)) as any);
    const isk = files.filter((f) => f.type === 4);
    expect(isk.map((f) => f.id)).toEqual([5, 6, 7, 8]);
    for (const f of isk) {
      expect(f.reg).toBeUndefined();
      expect(f.isk.id).toBe(f.id);
    }
    // 127.0.0.1 as CRIU keeps it: the network-order bytes 7f 00 00 01 read as a little-endian u32.
    expect(isk[2].isk.src_addr).toEqual([0x0100007f]);
    expect(isk[2].isk.dst_addr).toEqual([0]);
    expect(isk[3].isk.src_addr).toEqual([0, 0, 0xffff0000, 0x0302010a]);
    expect(isk[0].isk).not.toHaveProperty('v6only'); // AF_INET: not written, as CRIU does
    const fdinfo = unframeImage('fdinfo-1.img', 'FDINFO', bytesOf('fdinfo-1.img')).map((b) => messages().fdinfo.toObject(messages().fdinfo.decode(b)));
    expect(fdinfo.slice(4)).toEqual([
      { id: 5, flags: 0, type: 4, fd: 4 },
      { id: 6, flags: 1, type: 4, fd: 5 },
      { id: 7, flags: 1, type: 4, fd: 7 },
      { id: 8, flags: 0, type: 4, fd: 9 },
    ]);
  });
});

describe('crit reads the socket entries', () => {
  let dir = '';
  beforeAll(async () => {
    dir = (await makeCheckpoint(makeSocketTask())).dir;
  });
  afterAll(async () => removeDir(dir));

  const decode = async (name: string, pretty = true): Promise<Array<Record<string, any>>> =>
    (JSON.parse(await crit('decode', '-i', path.join(dir, name), ...(pretty ? ['--pretty'] : []))) as { entries: Array<Record<string, any>> }).entries;

  it('files.img: INETSK entries with CRIU field values (family, type, proto, state, ports, addresses, options)', async () => {
    const isk = (await decode('files.img')).filter((e) => e.type === 'INETSK');
    expect(isk.map((e) => e.id)).toEqual([5, 6, 7, 8]);
    const fown = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };
    const opts = (reuseaddr: boolean, reuseport: boolean): object => ({
      so_sndbuf: 0, so_rcvbuf: 0, so_snd_tmo_sec: 0, so_snd_tmo_usec: 0, so_rcv_tmo_sec: 0, so_rcv_tmo_usec: 0, reuseaddr, so_reuseport: reuseport,
    });
    expect(isk.map((e) => e.isk)).toEqual([
      {
        id: 5, ino: 48213, family: 'INET', type: 'STREAM', proto: 'TCP', state: 'LISTEN', src_port: 8000, dst_port: 0, flags: '0x2',
        backlog: 128, src_addr: ['0.0.0.0'], dst_addr: ['0.0.0.0'], fown, opts: opts(true, false),
      },
      {
        id: 6, ino: 48214, family: 'INET6', type: 'STREAM', proto: 'TCP', state: 'LISTEN', src_port: 8443, dst_port: 0, flags: '0x802',
        backlog: 4096, src_addr: ['::'], dst_addr: ['::'], fown, opts: opts(true, true), v6only: true,
      },
      {
        id: 7, ino: 4294967295, family: 'INET', type: 'DGRAM', proto: 'UDP', state: 'CLOSE', src_port: 5353, dst_port: 0, flags: '0x2',
        backlog: 0, src_addr: ['127.0.0.1'], dst_addr: ['0.0.0.0'], fown, opts: opts(false, true),
      },
      {
        id: 8, ino: 7, family: 'INET6', type: 'DGRAM', proto: 'UDP', state: 'CLOSE', src_port: 53, dst_port: 0, flags: '0x802',
        backlog: 0, src_addr: ['::ffff:a01:203'], dst_addr: ['::'], fown, opts: opts(false, false), v6only: false,
      },
    ]);
    // The numbers behind crit's names: AF_INET 2 / AF_INET6 10, SOCK_STREAM 1 / SOCK_DGRAM 2, TCP_LISTEN 10 / TCP_CLOSE 7.
    const raw = (await decode('files.img', false)).filter((e) => e.type === 'INETSK').map((e) => e.isk);
    expect(raw.map((e) => [e.family, e.type, e.proto, e.state, e.src_port])).toEqual([
      [2, 1, 6, 10, 8000], [10, 1, 6, 10, 8443], [2, 2, 17, 7, 5353], [10, 2, 17, 7, 53],
    ]);
  });

  it('fdinfo-1.img: INETSK entries for fds 4, 5, 7 and 9', async () => {
    const fdinfo = await decode('fdinfo-1.img');
    expect(fdinfo.filter((e) => e.type === 'INETSK')).toEqual([
      { id: 5, flags: 0, type: 'INETSK', fd: 4 },
      { id: 6, flags: 1, type: 'INETSK', fd: 5 },
      { id: 7, flags: 1, type: 'INETSK', fd: 7 },
      { id: 8, flags: 0, type: 'INETSK', fd: 9 },
    ]);
  });

  it('crit x fds lists the sockets by type and file id', async () => {
    const fds = (await crit('x', dir, 'fds')).split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
    expect(fds).toEqual(['4242', '0: /dev/null', '1: /dev/pts/3', '2: /var/log/victim.log', '3: /srv/app', '4: INETSK.5', '5: INETSK.6', '7: INETSK.7', '9: INETSK.8', 'cwd: /srv/app', 'root: /', '']);
  });
});

describe('the writer refuses sockets it cannot represent (EINVAL)', () => {
  const withSocket = (edit: (f: OpenFile, s: InetSocket) => void, index = 4): DumpedTask => {
    const task = makeSocketTask();
    edit(task.files[index], task.files[index].socket!);
    return task;
  };
  const cases: Array<[string, DumpedTask, string]> = [
    ['no socket description', withSocket((f) => delete f.socket), 'files[4] (fd 4): is a socket but has no socket description'],
    ['a socket on a regular file', withSocket((f) => { f.socket = makeSocketTask().files[4].socket; }, 2), 'files[2] (fd 2) is of kind reg but has a socket description'],
    ['a path that is not socket:[ino]', withSocket((f) => { f.path = 'socket:[4294967296]'; }), 'path "socket:[4294967296]" is not "socket:[<inode>]"'],
    ['a position', withSocket((f) => { f.pos = 10; }), 'a socket has no position or size, but pos is 10 and size 0'],
    ['a mode that is not a socket\'s', withSocket((f) => { f.mode = 0o100644; }), 'mode 33188 is not that of a socket (S_IFSOCK)'],
    ['family AF_UNIX', withSocket((_, s) => { s.family = 1; }), 'family 1 is not AF_INET (2) or AF_INET6 (10)'],
    ['type SOCK_RAW', withSocket((_, s) => { s.type = 3; }), 'type 3 is not SOCK_STREAM (1) or SOCK_DGRAM (2)'],
    ['UDP on a stream socket', withSocket((_, s) => { s.protocol = 17; }), 'protocol 17 is not one of SOCK_STREAM (6)'],
    ['a listening UDP socket', withSocket((_, s) => { s.state = 'listen'; }, 6), 'a SOCK_DGRAM socket cannot be listening'],
    ['state syn-sent', withSocket((_, s) => { (s as { state: string }).state = 'syn-sent'; }), 'state "syn-sent" is not listen, bound or connected'],
    ['a connected UDP socket', withSocket((_, s) => { s.state = 'connected'; }, 6), 'a connected SOCK_DGRAM socket is not restored'],
    ['port 0', withSocket((_, s) => { s.port = 0; }), 'port 0 is not in 1..65535'],
    ['port 65536', withSocket((_, s) => { s.port = 65536; }), 'port 65536 is not in 1..65535'],
    ['a negative backlog', withSocket((_, s) => { s.backlog = -1; }), 'backlog -1 is not in 0..2147483647'],
    ['v6only on AF_INET', withSocket((_, s) => { s.v6only = true; }), 'v6only is set on an AF_INET socket'],
    ['an IPv6 address on AF_INET', withSocket((_, s) => { s.address = '::1'; }), 'address "::1" is not an AF_INET address'],
    ['a garbage address', withSocket((_, s) => { s.address = '1::2::3'; }, 5), 'address "1::2::3" is not an AF_INET6 address'],
    ['a non-canonical IPv4 address', withSocket((_, s) => { s.address = '127.000.0.1'; }), 'address "127.000.0.1" is not written as inet_ntop writes it (127.0.0.1)'],
    ['a non-canonical IPv6 address', withSocket((_, s) => { s.address = '0:0::FFFF:10.1.2.3'; }, 5), 'is not written as inet_ntop writes it (::ffff:10.1.2.3)'],
  ];
  it.each(cases)('%s', (_name, task, message) => {
    let err: unknown;
    try {
      encodeTask(task);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ImageError);
    expect(err).toMatchObject({ code: 'EINVAL' });
    expect((err as Error).message).toContain(message);
  });
});

describe('the reader refuses hostile socket entries (EDECODE)', () => {
  let dir = '';
  beforeEach(async () => {
    dir = (await makeCheckpoint(makeSocketTask())).dir;
  });
  afterEach(async () => removeDir(dir));

  /** Re-writes an image entry by entry (decoded as protobufjs messages, re-encoded without verification). */
  async function editImage(name: 'files.img' | 'fdinfo-1.img', edit: (entry: any) => void): Promise<void> {
    const file = path.join(dir, name);
    const kind = name === 'files.img' ? 'FILES' : 'FDINFO';
    const type = name === 'files.img' ? messages().file : messages().fdinfo;
    const entries = unframeImage(name, kind, await fsp.readFile(file)).map((b) => {
      const msg = type.decode(b) as any;
      edit(msg);
      return type.encode(msg).finish();
    });
    await fsp.writeFile(file, frameImage(kind, entries));
    await recomputeManifest(dir);
  }

  /** Edits the inet_sk_entry of file id `id` (5: fd 4, tcp 0.0.0.0:8000; 6: fd 5, tcp6; 7: fd 7, udp). */
  const editSocket = (edit: (isk: any) => void, id: number): Promise<void> => editImage('files.img', (e) => {
    if (e.id === id) edit(e.isk);
  });

  const cases: Array<[string, (isk: any) => void, string, number]> = [
    ['bad family', (isk) => { isk.family = 1; }, 'entry 4 (id 5), socket:[48213]: family 1 is not AF_INET (2) or AF_INET6 (10)', 5],
    ['bad type', (isk) => { isk.type = 5; }, 'socket:[48213]: type 5 is not SOCK_STREAM (1) or SOCK_DGRAM (2)', 5],
    ['bad protocol', (isk) => { isk.proto = 0; }, 'socket:[48213]: protocol 0 is not one of SOCK_STREAM (6)', 5],
    ['bad state (SYN_SENT)', (isk) => { isk.state = 2; }, 'socket:[48213]: state 2 is not TCP_LISTEN (10), TCP_ESTABLISHED (1) or TCP_CLOSE (7), the only ones restored', 5],
    ['a listening UDP socket', (isk) => { isk.state = 10; }, 'socket:[4294967295]: a SOCK_DGRAM socket cannot be listening', 7],
    ['port 0', (isk) => { isk.src_port = 0; }, 'socket:[48213]: port 0 is not in 1..65535', 5],
    ['port over 65535', (isk) => { isk.src_port = 70000; }, 'socket:[48213]: port 70000 is not in 1..65535', 5],
    ['backlog over INT_MAX', (isk) => { isk.backlog = 0x8000_0000; }, 'socket:[48213]: backlog 2147483648 is not in 0..2147483647', 5],
    ['an IPv6-sized address on AF_INET', (isk) => { isk.src_addr = [0, 0, 0, 1]; }, 'socket:[48213]: src_addr has 4 words, an AF_INET address 1', 5],
    ['no address', (isk) => { isk.src_addr = []; }, 'socket:[48214]: src_addr has 0 words, an AF_INET6 address 4', 6],
    ['a peer port', (isk) => { isk.dst_port = 443; }, 'socket:[48213]: it has a peer (dst_port 443, dst_addr [0]): connected sockets are not restored', 5],
    ['a peer address', (isk) => { isk.dst_addr = [0x0100007f]; }, 'has a peer (dst_port 0, dst_addr [16777343])', 5],
    ['v6only on AF_INET', (isk) => { isk.v6only = true; }, 'socket:[48213]: v6only is set on an AF_INET socket', 5],
    ['a mode that is not a socket\'s', (isk) => { isk.cryopod_mode = 0o100644; }, 'socket:[48213]: mode 0o100644 is not that of a socket (S_IFSOCK)', 5],
    ['an inet_sk_entry id other than its file_entry\'s', (isk) => { isk.id = 9; }, 'entry 4 (id 5) carries an inet_sk_entry of id 9', 5],
  ];
  // Every row has all four values: jest hands a `done` callback to a test function with more parameters than the row.
  it.each(cases)('%s', async (_name, edit, message, id) => {
    await editSocket(edit, id);
    const err = await failure(dir);
    expect(err).toMatchObject({ code: 'EDECODE', file: 'files.img' });
    expect(err.message).toContain(message);
  });

  it('an INETSK file_entry without its inet_sk_entry, or with a reg_file_entry too', async () => {
    await editImage('files.img', (e) => {
      if (e.id === 5) e.isk = null;
    });
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'files.img', message: 'files.img: entry 4 (id 5) is of type INETSK but does not carry an inet_sk_entry alone' });
  });

  it('an INETSK fd pointing at a regular file, a REG fd pointing at a socket', async () => {
    await editImage('fdinfo-1.img', (e) => {
      if (e.fd === 4) e.id = 3;
    });
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'fdinfo-1.img', message: 'fdinfo-1.img: fd 4 is of type INETSK but refers to file id 3, a regular file (REG), not a socket' });
    await editImage('fdinfo-1.img', (e) => {
      if (e.fd === 4) e.id = 5;
      if (e.fd === 2) e.id = 6;
    });
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'fdinfo-1.img', message: 'fdinfo-1.img: fd 2 is of type REG but refers to file id 6, a socket (INETSK)' });
  });

  it('a cwd pointing at a socket', async () => {
    const fsImg = path.join(dir, 'fs-4242.img');
    const [bytes] = unframeImage('fs-4242.img', 'FS', await fsp.readFile(fsImg));
    const entry = messages().fs.decode(bytes) as any;
    entry.cwd_id = 5;
    await fsp.writeFile(fsImg, frameImage('FS', [messages().fs.encode(entry).finish()]));
    await recomputeManifest(dir);
    expect(await failure(dir)).toMatchObject({ code: 'EDECODE', file: 'fs-4242.img', message: 'fs-4242.img: cwd_id refers to file id 5, a socket, not a file' });
  });
});

describe('addresses and their text', () => {
  // inet_ntop's text (Node's SocketAddress formats with libuv's inet_ntop, the same as glibc's).
  const ntop6 = (bytes: Buffer): string => {
    const hex = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16)).join(':');
    return new net.SocketAddress({ address: hex, family: 'ipv6' }).address;
  };

  it('formats IPv6 addresses as inet_ntop does', () => {
    const samples = [
      '::', '::1', '1::', 'fe80::1', '2001:db8::ff00:42:8329', '2001:db8:0:0:1:0:0:1', '2001:0:0:1::1', '1:0:2:0:3:0:4:0', '::ffff:10.1.2.3',
      '::10.1.2.3', '::ffff:0:1.2.3.4', '0:0:0:0:0:1:0:0', '1:2:3:4:5:6:7:8', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '0:0:1::', '::0.0.1.0',
    ];
    for (const s of samples) {
      const bytes = fullBytes(s);
      expect(formatAddress(10, bytes)).toBe(ntop6(bytes));
    }
    // And a few thousand random ones with long zero runs.
    let x = 12345;
    const rnd = (): number => {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      return x;
    };
    for (let n = 0; n < 3000; n++) {
      const b = Buffer.alloc(16);
      for (let i = 0; i < 8; i++) if (rnd() % 3 === 0) b.writeUInt16BE(rnd() % 4 === 0 ? 0xffff : rnd() & 0xffff, i * 2);
      expect(formatAddress(10, b)).toBe(ntop6(b));
    }
  });

  it('shows a socket as ss would', () => {
    const [tcp, tcp6, udp, udp6] = sockets(makeSocketTask()).map((f) => socketString(f.socket!));
    expect([tcp, tcp6, udp, udp6]).toEqual(['tcp listen 0.0.0.0:8000', 'tcp6 listen [::]:8443 v6only', 'udp bound 127.0.0.1:5353', 'udp6 bound [::ffff:10.1.2.3]:53']);
  });
});

/** The 16 bytes of an IPv6 address text, via Node's parser (independent of socket.ts). */
function fullBytes(s: string): Buffer {
  const canonical = new net.SocketAddress({ address: s, family: 'ipv6' }).address;
  const b = Buffer.alloc(16);
  const [head, tail] = canonical.includes('::') ? canonical.split('::') : [canonical, undefined];
  const words = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').flatMap((g) => (g.includes('.') ? ((v) => [(v[0] << 8) | v[1], (v[2] << 8) | v[3]])(g.split('.').map(Number)) : [parseInt(g, 16)]));
  };
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  all.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return b;
}
