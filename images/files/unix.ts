/**
 * Unix sockets (native/src/core/files/unix_socket.cc): a file_entry of type UNIXSK carrying a
 * unix_sk_entry (`usk`): inode, type, state, backlog, peer inode, bound name (a leading NUL when
 * abstract) and, in cryopod_queue, the messages queued for reading on it. A connection whose peer has
 * closed is state ESTABLISHED with peer 0 (`peer_gone` in the model). The path is the kernel's
 * "socket:[ino]".
 */

import { FileState, OpenFile } from '../../native/lib/types';
import { ImageError } from '../errors';
import { FD_TYPE_UNIXSK } from '../wire';
import { DecodedKindFile, ImageFileKind, stateNum, u32Field, ZERO_FOWN } from './kind';

const TCP_ESTABLISHED = 1;
const TCP_CLOSE = 7;
const TCP_LISTEN = 10;
const MAX_QUEUE = 4096;
const NO_OPTS = { so_sndbuf: 0, so_rcvbuf: 0, so_snd_tmo_sec: 0, so_snd_tmo_usec: 0, so_rcv_tmo_sec: 0, so_rcv_tmo_usec: 0 };

function encode(f: OpenFile, id: number, what: string): object {
  const s = f.state;
  if (s === undefined) throw new ImageError('EINVAL', undefined, `${what}: the unix socket has no state`);
  const listening = stateNum(f, 'listening', what) !== 0n;
  const peer = Number(stateNum(f, 'peer', what));
  const name = s.text.name === undefined ? Buffer.alloc(0) : Buffer.concat([s.num.abstract ? Buffer.from([0]) : Buffer.alloc(0), Buffer.from(s.text.name, 'utf8')]);
  return {
    id, ino: Number(stateNum(f, 'ino', what)), type: Number(stateNum(f, 'type', what)),
    state: listening ? TCP_LISTEN : peer !== 0 || s.num.peer_gone ? TCP_ESTABLISHED : TCP_CLOSE,
    flags: f.flags, uflags: 0, backlog: Number(s.num.backlog ?? 0), peer, fown: ZERO_FOWN, opts: NO_OPTS, name,
    cryopod_queue: (s.items ?? []).map((m) => m.data ?? Buffer.alloc(0)),
    ...(listening && s.num.pending ? { cryopod_pending: Number(s.num.pending) } : {}),
  };
}

function decode(msg: Record<string, unknown>, file: string, what: string): DecodedKindFile {
  const ino = u32Field(msg, 'ino', file, what);
  const name = msg.name instanceof Uint8Array ? Buffer.from(msg.name) : Buffer.alloc(0);
  const queue = Array.isArray(msg.cryopod_queue) ? (msg.cryopod_queue as Uint8Array[]) : [];
  if (queue.length > MAX_QUEUE) throw new ImageError('ETOOBIG', file, `${what}: ${queue.length} queued messages, over ${MAX_QUEUE}`);
  const abstract = name.length > 0 && name[0] === 0;
  const state: FileState = {
    num: {
      ino, type: u32Field(msg, 'type', file, what), peer: u32Field(msg, 'peer', file, what),
      listening: u32Field(msg, 'state', file, what) === TCP_LISTEN ? 1 : 0, backlog: u32Field(msg, 'backlog', file, what),
      // Connected with no peer inode: its peer had closed (CRIU's image says the same with peer 0).
      ...(u32Field(msg, 'state', file, what) === TCP_ESTABLISHED && u32Field(msg, 'peer', file, what) === 0 ? { peer_gone: 1 } : {}),
      ...(name.length > 0 ? { abstract: abstract ? 1 : 0 } : {}),
      ...(msg.cryopod_pending ? { pending: u32Field(msg, 'cryopod_pending', file, what) } : {}),
    },
    text: name.length > 0 ? { name: (abstract ? name.subarray(1) : name).toString('utf8') } : {},
    items: queue.map((b) => ({ num: {}, text: {}, data: Buffer.from(b) })),
  };
  return { kind: 'unix', path: `socket:[${ino}]`, flags: u32Field(msg, 'flags', file, what), pos: 0, size: 0, mode: 0, state };
}

export const unixKind: ImageFileKind = { kind: 'unix', fdType: FD_TYPE_UNIXSK, field: 'usk', encode, decode };
