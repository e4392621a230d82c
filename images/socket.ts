/**
 * OpenFile of kind 'socket' <-> CRIU's inet_sk_entry (sk-inet.proto), the `isk` of a file_entry of
 * type INETSK in files.img. What maps where:
 *
 *   OpenFile                     inet_sk_entry
 *   path "socket:[ino]"          ino (the path is rebuilt from it)
 *   flags                        flags
 *   mode                         cryopod_mode (extension; CRIU keeps no mode)
 *   pos, size                    - (always 0 for a socket: the writer refuses anything else)
 *   socket.family/type/protocol  family / type / proto
 *   socket.state                 state: 'listen' TCP_LISTEN (10), 'bound' TCP_CLOSE (7), 'connected'
 *                                TCP_ESTABLISHED (1: restored as a reset connection; no peer recorded)
 *   socket.address, port         src_addr (u32 words holding network-order bytes), src_port;
 *                                dst_addr all zeros of the same length, dst_port 0 (unconnected)
 *   socket.backlog               backlog
 *   socket.reuseaddr/reuseport   opts.reuseaddr / opts.so_reuseport (buffers and timeouts: 0)
 *   socket.v6only                v6only, written for AF_INET6 only (as CRIU does)
 *
 * The textual address is inet_ntop's form (what the native side produces): the writer refuses any
 * other spelling of an address, so that reading it back gives the very same string.
 */

import { InetSocket, OpenFile } from '../native/lib/types';
import { ImageError } from './errors';
import {
  AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, InetSkMsg, S_IFMT, S_IFSOCK, SOCKET_MODE, SOCK_DGRAM, SOCK_STREAM,
  TCP_CLOSE, TCP_ESTABLISHED, TCP_LISTEN,
} from './wire';

const U32_MAX = 0xffff_ffff;
/** listen(2) takes an int. */
const MAX_BACKLOG = 0x7fff_ffff;
const SOCKET_PATH = /^socket:\[(0|[1-9][0-9]{0,9})\]$/;

const FAMILY_NAMES: Record<number, string> = { [AF_INET]: 'AF_INET', [AF_INET6]: 'AF_INET6' };
const TYPE_NAMES: Record<number, string> = { [SOCK_STREAM]: 'SOCK_STREAM', [SOCK_DGRAM]: 'SOCK_DGRAM' };
/** The protocols each socket type may have (what SO_PROTOCOL reports). */
const PROTOCOLS: Record<number, readonly number[]> = {
  [SOCK_STREAM]: [IPPROTO_TCP],
  [SOCK_DGRAM]: [IPPROTO_UDP, IPPROTO_UDPLITE],
};
/** Address length in u32 words, per family. */
const ADDR_WORDS: Record<number, number> = { [AF_INET]: 1, [AF_INET6]: 4 };

// ---- addresses -------------------------------------------------------------------------------

function parseIPv4(s: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null) return null;
  const bytes = m.slice(1).map(Number);
  return bytes.every((b) => b <= 255) ? bytes : null;
}

/** The 8 16-bit words of an IPv6 address, or null. Accepts '::' and a trailing dotted IPv4 part. */
function parseIPv6(s: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  const side = (part: string, lastMayBeV4: boolean): number[] | null => {
    if (part === '') return [];
    const groups = part.split(':');
    const words: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (lastMayBeV4 && i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        if (v4 === null) return null;
        words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
        words.push(parseInt(g, 16));
      } else {
        return null;
      }
    }
    return words;
  };
  const gap = s.indexOf('::');
  if (gap < 0) {
    const words = side(s, true);
    return words !== null && words.length === 8 ? words : null;
  }
  if (s.indexOf('::', gap + 1) >= 0) return null;
  const head = side(s.slice(0, gap), false);
  const tail = side(s.slice(gap + 2), true);
  if (head === null || tail === null || head.length + tail.length > 7) return null;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** inet_ntop(AF_INET6) as glibc (and ISC, libuv) write it: leftmost longest run of >= 2 zero words. */
function formatIPv6(bytes: Buffer): string {
  const words = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  let best = { base: -1, len: 0 };
  let cur = { base: -1, len: 0 };
  words.forEach((w, i) => {
    if (w === 0) {
      cur = cur.base === -1 ? { base: i, len: 1 } : { base: cur.base, len: cur.len + 1 };
      if (cur.len > best.len) best = cur;
    } else {
      cur = { base: -1, len: 0 };
    }
  });
  if (best.len < 2) best = { base: -1, len: 0 };
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (best.base !== -1 && i >= best.base && i < best.base + best.len) {
      if (i === best.base) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    // IPv4-compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) addresses end in dotted form.
    if (i === 6 && best.base === 0 && (best.len === 6 || (best.len === 5 && words[5] === 0xffff))) {
      out += Array.from(bytes.subarray(12, 16)).join('.');
      break;
    }
    out += words[i].toString(16);
  }
  if (best.base !== -1 && best.base + best.len === 8) out += ':';
  return out;
}

/** The address bytes (network order) of a textual address of `family`, or null if it is not one. */
function addressBytes(family: number, text: string): Buffer | null {
  if (family === AF_INET) {
    const v4 = parseIPv4(text);
    return v4 === null ? null : Buffer.from(v4);
  }
  const words = parseIPv6(text);
  if (words === null) return null;
  const b = Buffer.alloc(16);
  words.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return b;
}

/** inet_ntop's text of network-order address bytes (4 for AF_INET, 16 for AF_INET6). */
export function formatAddress(family: number, bytes: Buffer): string {
  return family === AF_INET ? Array.from(bytes.subarray(0, 4)).join('.') : formatIPv6(bytes);
}

/** Bytes -> inet_sk_entry words: each u32 holds 4 network-order bytes as they sit in memory (x86_64). */
function wordsOf(bytes: Buffer): number[] {
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readUInt32LE(i * 4));
}

function bytesOf(words: readonly number[]): Buffer {
  const b = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => b.writeUInt32LE(w >>> 0, i * 4));
  return b;
}

// ---- writing ---------------------------------------------------------------------------------

function invalid(what: string, why: string): ImageError {
  return new ImageError('EINVAL', undefined, `${what}: ${why}`);
}

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX;
}

/**
 * The inet_sk_entry of an OpenFile of kind 'socket' (file id `id`). Throws EINVAL for what the
 * entry cannot hold faithfully. `what` names the fd in messages, e.g. 'files[4] (fd 5)'.
 */
export function encodeInetSk(f: OpenFile, id: number, what: string): object {
  const s = f.socket;
  if (s === undefined) throw invalid(what, "is a socket but has no socket description");
  const m = SOCKET_PATH.exec(f.path);
  const ino = m === null ? NaN : Number(m[1]);
  if (!isU32(ino)) throw invalid(what, `path ${JSON.stringify(f.path)} is not "socket:[<inode>]" with an inode below 2^32`);
  if (f.pos !== 0 || f.size !== 0) throw invalid(what, `a socket has no position or size, but pos is ${f.pos} and size ${f.size}`);
  if (!isU32(f.mode) || (f.mode & S_IFMT) !== S_IFSOCK) throw invalid(what, `mode ${f.mode} is not that of a socket (S_IFSOCK)`);
  if (!isU32(f.flags)) throw invalid(what, `flags ${f.flags} is not a u32`);
  checkSocket(s, (why) => invalid(what, why));
  const bytes = addressBytes(s.family, s.address);
  if (bytes === null) throw invalid(what, `address ${JSON.stringify(s.address)} is not an ${FAMILY_NAMES[s.family]} address`);
  const canonical = formatAddress(s.family, bytes);
  if (canonical !== s.address) throw invalid(what, `address ${JSON.stringify(s.address)} is not written as inet_ntop writes it (${canonical})`);
  if (typeof s.reuseaddr !== 'boolean' || typeof s.reuseport !== 'boolean' || typeof s.v6only !== 'boolean') {
    throw invalid(what, 'reuseaddr, reuseport and v6only must be booleans');
  }
  const entry: Record<string, unknown> = {
    id,
    ino,
    family: s.family,
    type: s.type,
    proto: s.protocol,
    state: s.state === 'listen' ? TCP_LISTEN : s.state === 'connected' ? TCP_ESTABLISHED : TCP_CLOSE,
    src_port: s.port,
    dst_port: 0,
    flags: f.flags,
    backlog: s.backlog,
    src_addr: wordsOf(bytes),
    dst_addr: wordsOf(Buffer.alloc(bytes.length)),
    fown: { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 },
    opts: {
      so_sndbuf: 0, so_rcvbuf: 0, so_snd_tmo_sec: 0, so_snd_tmo_usec: 0, so_rcv_tmo_sec: 0, so_rcv_tmo_usec: 0,
      reuseaddr: s.reuseaddr,
      so_reuseport: s.reuseport,
    },
    cryopod_mode: f.mode,
  };
  if (s.family === AF_INET6) entry.v6only = s.v6only;
  if (s.pending) entry.cryopod_pending = s.pending;
  return entry;
}

/**
 * The checks writer and reader share: family, type, protocol, state, port, backlog, v6only. `fail`
 * makes the error (EINVAL for the writer, EDECODE for the reader).
 */
function checkSocket(
  s: Pick<InetSocket, 'family' | 'type' | 'protocol' | 'state' | 'port' | 'backlog' | 'v6only' | 'pending'>, fail: (why: string) => ImageError,
): void {
  if (FAMILY_NAMES[s.family] === undefined) throw fail(`family ${s.family} is not AF_INET (2) or AF_INET6 (10)`);
  if (TYPE_NAMES[s.type] === undefined) throw fail(`type ${s.type} is not SOCK_STREAM (1) or SOCK_DGRAM (2)`);
  if (!PROTOCOLS[s.type].includes(s.protocol)) {
    throw fail(`protocol ${s.protocol} is not one of ${TYPE_NAMES[s.type]} (${PROTOCOLS[s.type].join(', ')})`);
  }
  if (s.state !== 'listen' && s.state !== 'bound' && s.state !== 'connected') throw fail(`state ${JSON.stringify(s.state)} is not listen, bound or connected`);
  if (s.state === 'connected' && s.type !== SOCK_STREAM) throw fail(`a connected ${TYPE_NAMES[s.type]} socket is not restored`);
  if (s.state === 'listen' && s.type !== SOCK_STREAM) throw fail(`a ${TYPE_NAMES[s.type]} socket cannot be listening`);
  if (!Number.isInteger(s.port) || s.port < 1 || s.port > 0xffff) throw fail(`port ${s.port} is not in 1..65535 (a bound socket has a port)`);
  if (!Number.isInteger(s.backlog) || s.backlog < 0 || s.backlog > MAX_BACKLOG) throw fail(`backlog ${s.backlog} is not in 0..${MAX_BACKLOG}`);
  if (s.v6only && s.family !== AF_INET6) throw fail('v6only is set on an AF_INET socket (IPV6_V6ONLY is AF_INET6 only)');
  const pending = s.pending ?? 0;
  if (!Number.isInteger(pending) || pending < 0 || pending > MAX_BACKLOG) throw fail(`pending ${pending} is not in 0..${MAX_BACKLOG}`);
  if (pending > 0 && s.state !== 'listen') throw fail(`pending connections (${pending}) on a socket that does not listen`);
}

// ---- reading ---------------------------------------------------------------------------------

/** What files.img says of a socket: everything of its OpenFile but fd and cloexec (from fdinfo). */
export type DecodedSocket = Omit<OpenFile, 'fd' | 'cloexec'> & { socket: InetSocket };

/**
 * The OpenFile parts of an inet_sk_entry read from `file` (files.img), validated: anything Cryopod
 * would not restore as it was dumped is EDECODE. `what` names the entry, e.g. 'entry 4 (id 5)'.
 */
export function decodeInetSk(file: string, what: string, isk: InetSkMsg): DecodedSocket {
  const fail = (why: string): ImageError => new ImageError('EDECODE', file, `${what}, socket:[${isk.ino}]: ${why}`);
  let state: InetSocket['state'];
  if (isk.state === TCP_LISTEN) state = 'listen';
  else if (isk.state === TCP_CLOSE) state = 'bound';
  else if (isk.state === TCP_ESTABLISHED) state = 'connected';
  else throw fail(`state ${isk.state} is not TCP_LISTEN (10), TCP_ESTABLISHED (1) or TCP_CLOSE (7), the only ones restored`);
  const v6only = isk.v6only ?? false;
  checkSocket({ family: isk.family, type: isk.type, protocol: isk.proto, state, port: isk.src_port, backlog: isk.backlog, v6only, pending: isk.cryopod_pending }, fail);
  const words = ADDR_WORDS[isk.family];
  if (isk.src_addr.length !== words) {
    throw fail(`src_addr has ${isk.src_addr.length} words, an ${FAMILY_NAMES[isk.family]} address ${words}`);
  }
  if (isk.dst_port !== 0 || isk.dst_addr.length > words || isk.dst_addr.some((w) => w !== 0)) {
    throw fail(`it has a peer (dst_port ${isk.dst_port}, dst_addr [${isk.dst_addr.join(', ')}]): connected sockets are not restored`);
  }
  const mode = isk.cryopod_mode ?? SOCKET_MODE;
  if ((mode & S_IFMT) !== S_IFSOCK) throw fail(`mode 0o${mode.toString(8)} is not that of a socket (S_IFSOCK)`);
  return {
    kind: 'socket',
    path: `socket:[${isk.ino}]`,
    flags: isk.flags,
    pos: 0,
    size: 0,
    mode,
    socket: {
      family: isk.family,
      type: isk.type,
      protocol: isk.proto,
      state,
      address: formatAddress(isk.family, bytesOf(isk.src_addr)),
      port: isk.src_port,
      backlog: isk.backlog,
      reuseaddr: isk.opts.reuseaddr ?? false,
      reuseport: isk.opts.so_reuseport ?? false,
      v6only,
      ...(isk.cryopod_pending ? { pending: isk.cryopod_pending } : {}),
    },
  };
}

/** A socket as a line of `ss` would put it: "tcp listen 0.0.0.0:8000", "udp bound [::1]:53". */
export function socketString(s: InetSocket): string {
  const proto = s.protocol === IPPROTO_UDPLITE ? 'udplite' : s.type === SOCK_STREAM ? 'tcp' : 'udp';
  const host = s.family === AF_INET6 ? `[${s.address}]` : s.address;
  return `${proto}${s.family === AF_INET6 ? '6' : ''} ${s.state} ${host}:${s.port}${s.v6only ? ' v6only' : ''}`;
}
