/**
 * files.img and fdinfo-<n>.img -> the open files of a task: regular files, sockets, pipes and every other
 * kind (images/files/), each by file id, and each task's fd table over them. Split from decode.ts, which
 * re-exports it.
 */
import { FileState, OpenFile } from '../native/lib/types';
import { unframeImage } from './codec';
import { checkPath } from './decode-entry';
import { DecodedKindFile } from './files/kind';
import { ghostState } from './files/ghost';
import { decodeLocks } from './files/locks';
import { IMAGE_FILE_KINDS, imageKindOfType } from './files/registry';
import { ImageError } from './errors';
import { MAX_FDS } from './limits';
import { decodeEntry, messages } from './proto';
import { numberOf } from './u64';
import {
  FD_CLOEXEC, FD_TYPE_INETSK, FD_TYPE_NAMES, FD_TYPE_PIPE, FD_TYPE_REG, FILE_KIND, FdinfoMsg, FileMsg, O_ACCMODE, O_RDONLY, O_WRONLY, PIPE_MODE,
  PipeMsg, RegFileKind, RegFileMsg, S_IFIFO, S_IFMT,
} from './wire';
import { DecodedSocket, decodeInetSk } from './socket';

/**
 * files.img: the regular-file entries (REG: fds, exe, cwd, root, mapped files) and the sockets
 * (INETSK, already validated), each by file id. Ids are unique across both.
 */
export interface DecodedFiles {
  reg: Map<number, RegFileMsg>;
  sockets: Map<number, DecodedSocket>;
  pipes: Map<number, DecodedPipe>;
  /** Fds of the kinds of images/files/ (eventfd, ...), by file id. */
  kinds: Map<number, { fdType: number; file: DecodedKindFile }>;
  /** Deleted files (remap-fpath.img, ghost-file-<id>.img: ghosts.ts), by file id; set by the reader. */
  ghosts?: Map<number, { ghostId: number; mode: number; data: Buffer }>;
}

/** What files.img says of a pipe end: everything of its OpenFile but fd and cloexec (from fdinfo). */
export type DecodedPipe = Omit<OpenFile, 'fd' | 'cloexec'> & { pipe: { id: number; write: boolean } };

function decodePipe(file: string, what: string, p: PipeMsg): DecodedPipe {
  const fail = (why: string): ImageError => new ImageError('EDECODE', file, `${what}, pipe:[${p.pipe_id}]: ${why}`);
  if (p.pipe_id === 0) throw fail('pipe_id is 0');
  const acc = p.flags & O_ACCMODE;
  if (acc !== O_RDONLY && acc !== O_WRONLY) throw fail(`flags 0o${p.flags.toString(8)} open it neither O_RDONLY (read end) nor O_WRONLY (write end)`);
  const mode = p.cryopod_mode ?? PIPE_MODE;
  if ((mode & S_IFMT) !== S_IFIFO) throw fail(`mode 0o${mode.toString(8)} is not that of a pipe (S_IFIFO)`);
  const external = p.cryopod_external === true ? { state: { num: { external: 1 }, text: {} } } : {};
  return { kind: 'pipe', path: `pipe:[${p.pipe_id}]`, flags: p.flags, pos: 0, size: 0, mode, pipe: { id: p.pipe_id, write: acc === O_WRONLY }, ...external };
}

export function decodeFiles(file: string, buf: Uint8Array, maxEntries: number): DecodedFiles {
  const entries = unframeImage(file, 'FILES', buf);
  if (entries.length > maxEntries) throw new ImageError('ETOOBIG', file, `${entries.length} file entries, over the cap of ${maxEntries}`);
  const out: DecodedFiles = { reg: new Map(), sockets: new Map(), pipes: new Map(), kinds: new Map() };
  entries.forEach((bytes, i) => {
    const f = decodeEntry<FileMsg>(file, `entry ${i}`, messages().file, bytes);
    if (out.reg.has(f.id) || out.sockets.has(f.id) || out.pipes.has(f.id) || out.kinds.has(f.id)) throw new ImageError('EDECODE', file, `entry ${i}: id ${f.id} is used twice`);
    const kind = imageKindOfType(f.type);
    const carried = [f.reg, f.isk, f.pipe, ...IMAGE_FILE_KINDS.map((k) => f[k.field])].filter((x) => x !== undefined).length;
    if (kind !== undefined) {
      const msg = f[kind.field] as Record<string, unknown> | undefined;
      const what = `entry ${i} (id ${f.id})`;
      if (msg === undefined || carried !== 1) throw new ImageError('EDECODE', file, `${what} is of type ${FD_TYPE_NAMES[f.type]} but does not carry its ${kind.field} alone`);
      if (msg.id !== f.id) throw new ImageError('EDECODE', file, `${what} carries a ${kind.field} of id ${String(msg.id)}`);
      out.kinds.set(f.id, { fdType: f.type, file: kind.decode(msg, file, what) });
    } else if (f.type === FD_TYPE_PIPE) {
      if (f.pipe === undefined || carried !== 1) throw new ImageError('EDECODE', file, `entry ${i} (id ${f.id}) is of type PIPE but does not carry a pipe_entry alone`);
      if (f.pipe.id !== f.id) throw new ImageError('EDECODE', file, `entry ${i} (id ${f.id}) carries a pipe_entry of id ${f.pipe.id}`);
      out.pipes.set(f.id, decodePipe(file, `entry ${i} (id ${f.id})`, f.pipe));
    } else if (f.pipe !== undefined) {
      throw new ImageError('EDECODE', file, `entry ${i} (id ${f.id}) is of type ${FD_TYPE_NAMES[f.type] ?? f.type} but carries a pipe_entry`);
    } else if (f.type === FD_TYPE_REG && f.reg !== undefined && f.isk === undefined) {
      checkPath(file, `entry ${i} name`, f.reg.name);
      out.reg.set(f.id, f.reg);
    } else if (f.type === FD_TYPE_INETSK && f.isk !== undefined && f.reg === undefined) {
      if (f.isk.id !== f.id) throw new ImageError('EDECODE', file, `entry ${i} (id ${f.id}) carries an inet_sk_entry of id ${f.isk.id}`);
      out.sockets.set(f.id, decodeInetSk(file, `entry ${i} (id ${f.id})`, f.isk));
    } else if (f.type === FD_TYPE_REG || f.type === FD_TYPE_INETSK) {
      throw new ImageError('EDECODE', file, `entry ${i} (id ${f.id}) is of type ${FD_TYPE_NAMES[f.type]} but does not carry ${f.type === FD_TYPE_REG ? 'a reg_file_entry' : 'an inet_sk_entry'} alone`);
    } else {
      throw new ImageError('EDECODE', file, `entry ${i} (id ${f.id}) is of type ${FD_TYPE_NAMES[f.type] ?? f.type}; Cryopod restores regular files, pipes, IPv4/IPv6 sockets and ${IMAGE_FILE_KINDS.map((k) => k.kind).join(', ')} only`);
    }
  });
  return out;
}

/** The regular file `id` (exe, cwd, root, a mapped file or an fd's). */
export function fileById(files: DecodedFiles, id: number, filesImg: string, file: string, what: string): RegFileMsg {
  const f = files.reg.get(id);
  if (f === undefined) {
    const why = files.sockets.has(id) ? 'a socket, not a file' : files.pipes.has(id) ? 'a pipe, not a file' : `which ${filesImg} does not have`;
    throw new ImageError('EDECODE', file, `${what} refers to file id ${id}, ${why}`);
  }
  return f;
}

const KIND_BY_NUMBER = new Map<number, RegFileKind>(
  (Object.keys(FILE_KIND) as RegFileKind[]).map((k) => [FILE_KIND[k], k]),
);

/** The file id each fdinfo entry refers to, in order (images/shared-files.ts). */
export function fdinfoFileIds(file: string, buf: Uint8Array): number[] {
  return unframeImage(file, 'FDINFO', buf).map((bytes, i) => decodeEntry<FdinfoMsg>(file, `entry ${i}`, messages().fdinfo, bytes).id);
}

export function decodeFdinfo(file: string, buf: Uint8Array, files: DecodedFiles, filesImg: string): OpenFile[] {
  const entries = unframeImage(file, 'FDINFO', buf);
  if (entries.length > MAX_FDS) throw new ImageError('ETOOBIG', file, `${entries.length} fds, over the cap of ${MAX_FDS}`);
  let prevFd = -1;
  return entries.map((bytes, i) => {
    const e = decodeEntry<FdinfoMsg>(file, `entry ${i}`, messages().fdinfo, bytes);
    const kindFile = files.kinds.get(e.id);
    if (imageKindOfType(e.type) !== undefined) {
      if (kindFile === undefined || kindFile.fdType !== e.type) throw new ImageError('EDECODE', file, `fd ${e.fd} is of type ${FD_TYPE_NAMES[e.type]} but refers to file id ${e.id}, which is not one in ${filesImg}`);
    }
    if (e.type !== FD_TYPE_REG && e.type !== FD_TYPE_INETSK && e.type !== FD_TYPE_PIPE && kindFile === undefined) {
      throw new ImageError('EDECODE', file, `fd ${e.fd} is of type ${FD_TYPE_NAMES[e.type] ?? e.type}; Cryopod restores regular files, pipes, IPv4/IPv6 sockets and ${IMAGE_FILE_KINDS.map((k) => k.kind).join(', ')} only`);
    }
    // DumpedTask.files is ascending by fd; this also refuses duplicates.
    if (e.fd <= prevFd) throw new ImageError('EDECODE', file, `fd ${e.fd} is not ascending (the entry before is fd ${prevFd})`);
    prevFd = e.fd;
    const cloexec = (e.flags & FD_CLOEXEC) !== 0;
    if (kindFile !== undefined) {
      if (kindFile.fdType !== e.type) throw new ImageError('EDECODE', file, `fd ${e.fd} is of type ${FD_TYPE_NAMES[e.type] ?? e.type} but refers to file id ${e.id}, a ${FD_TYPE_NAMES[kindFile.fdType]}`);
      return { fd: e.fd, cloexec, ...kindFile.file };
    }
    if (e.type === FD_TYPE_INETSK) {
      const sk = files.sockets.get(e.id);
      if (sk === undefined) {
        const why = files.reg.has(e.id) ? 'a regular file (REG), not a socket' : files.pipes.has(e.id) ? 'a pipe (PIPE), not a socket' : `which ${filesImg} does not have`;
        throw new ImageError('EDECODE', file, `fd ${e.fd} is of type INETSK but refers to file id ${e.id}, ${why}`);
      }
      return { fd: e.fd, kind: sk.kind, path: sk.path, flags: sk.flags, cloexec, pos: sk.pos, size: sk.size, mode: sk.mode, socket: { ...sk.socket } };
    }
    if (e.type === FD_TYPE_PIPE) {
      const p = files.pipes.get(e.id);
      if (p === undefined) {
        const why = files.reg.has(e.id) ? 'a regular file (REG)' : files.sockets.has(e.id) ? 'a socket (INETSK)' : `which ${filesImg} does not have`;
        throw new ImageError('EDECODE', file, `fd ${e.fd} is of type PIPE but refers to file id ${e.id}, ${why}, not a pipe`);
      }
      return { fd: e.fd, kind: 'pipe', path: p.path, flags: p.flags, cloexec, pos: 0, size: 0, mode: p.mode, pipe: { ...p.pipe }, ...(p.state ? { state: p.state } : {}) };
    }
    if (files.sockets.has(e.id)) throw new ImageError('EDECODE', file, `fd ${e.fd} is of type REG but refers to file id ${e.id}, a socket (INETSK)`);
    if (files.pipes.has(e.id)) throw new ImageError('EDECODE', file, `fd ${e.fd} is of type ${FD_TYPE_NAMES[e.type]} but refers to file id ${e.id}, a pipe (PIPE)`);
    const reg = fileById(files, e.id, filesImg, file, `fd ${e.fd}`);
    const kind = reg.cryopod_kind === undefined ? 'reg' : KIND_BY_NUMBER.get(reg.cryopod_kind);
    const locks = decodeLocks(reg, filesImg);
    if (kind === undefined) throw new ImageError('EDECODE', filesImg, `file id ${reg.id} has unknown cryopod_kind ${reg.cryopod_kind}`);
    return {
      fd: e.fd,
      kind,
      path: reg.name,
      flags: reg.flags,
      cloexec,
      pos: numberOf(reg.pos, filesImg, `file id ${reg.id} pos`),
      size: reg.size === undefined ? 0 : numberOf(reg.size, filesImg, `file id ${reg.id} size`),
      mode: reg.mode ?? 0,
      ...(locks ? { state: locks } : {}),
      // A terminal is always external (native/src/core/files/tty.cc).
      ...(kind === 'tty' ? { state: { num: { external: 1 }, text: {} } } : {}),
      ...(kind === 'ghost' ? { state: ghostOfFd(files, reg, filesImg) } : {}),
    };
  });
}

/** A deleted file's contents: from its ghost file, or (images before ghost files) from cryopod_contents. */
function ghostOfFd(files: DecodedFiles, reg: RegFileMsg, filesImg: string): FileState {
  const g = files.ghosts?.get(reg.id);
  if (g === undefined) return ghostState(reg, filesImg);
  return { num: {}, text: {}, ...(g.data.length ? { data: g.data } : {}) };
}
