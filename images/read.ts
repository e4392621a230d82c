/**
 * readCheckpoint: the hardened reader. In order, and stopping at the first problem:
 *   1. the manifest: present (EMISSING), sane, a version we read (EVERSION);
 *   2. every listed file: present, regular, of the listed size and sha256 (ECHECKSUM);
 *   3. each image, from the very bytes that were hashed: magics (EMAGIC), entry framing (ETRUNC),
 *      caps (ETOOBIG), protobuf and values (EDECODE), CRIU image version (EVERSION);
 *   4. the layout: VMAs and page runs against each other and the pages file's size (EBOUNDS).
 * Threads: pstree.img lists every tid (capped, no duplicates, the main one included), and the manifest
 * must list exactly one core-<tid>.img per tid (EMISSING for a missing one, EDECODE for an extra one).
 * Only then is a task handed out, with the path of the pages file it may map pages from.
 */

import * as path from 'path';
import { DumpedTask, ThreadState } from '../native/lib/types';
import {
  decodeCore, decodeThreadCore, decodeFdinfo, decodeFiles, decodeFs, decodeIds, decodeInventory, decodeMm, decodePagemap, decodePstree, fileById,
} from './decode';
import { ImageError } from './errors';
import { checkPageRuns, checkVmas } from './layout';
import { MAX_FDS, MAX_VMAS } from './limits';
import { PAGES_FILE, imageName } from './magic';
import { Manifest, readVerified, verifyManifest } from './manifest';

const CORE_NAME = /^core-.*\.img$/;

/**
 * The core images the manifest lists must be exactly one per thread of pstree.img: a thread without
 * its core is EMISSING, a core of no listed thread (a thread list that does not match) EDECODE.
 */
function checkThreadCores(manifest: Manifest, pid: number, otherTids: readonly number[]): void {
  const expected = new Set([pid, ...otherTids].map((tid) => imageName.core(tid)));
  const listed = new Set(manifest.files.map((f) => f.name).filter((n) => CORE_NAME.test(n)));
  for (const tid of [pid, ...otherTids]) {
    const name = imageName.core(tid);
    if (!listed.has(name)) throw new ImageError('EMISSING', name, `thread ${tid} of task ${pid} in ${imageName.pstree()} has no core image in the manifest`);
  }
  for (const name of listed) {
    if (!expected.has(name)) throw new ImageError('EDECODE', name, `is listed in the manifest but is not the core of a thread of task ${pid} in ${imageName.pstree()}`);
  }
}

export async function readCheckpoint(dir: string): Promise<{ task: DumpedTask; pagesPath: string; manifest: Manifest }> {
  const manifest = await verifyManifest(dir);
  const read = (name: string): Promise<Buffer> => readVerified(dir, manifest, name);

  decodeInventory(imageName.inventory(), await read(imageName.inventory()));
  const { ps, otherTids } = decodePstree(imageName.pstree(), await read(imageName.pstree()));
  if (ps.pid !== manifest.pid) {
    throw new ImageError('EDECODE', imageName.pstree(), `task ${ps.pid} is not the task ${manifest.pid} the manifest names`);
  }
  const pid = ps.pid;
  checkThreadCores(manifest, pid, otherTids);
  const ids = decodeIds(imageName.ids(pid), await read(imageName.ids(pid)));
  const filesImg = imageName.files();
  // One entry per fd, plus exe, cwd, root and one per file-backed VMA.
  const files = decodeFiles(filesImg, await read(filesImg), MAX_FDS + MAX_VMAS + 3);
  const core = decodeCore(imageName.core(pid), await read(imageName.core(pid)));
  const threads: ThreadState[] = [];
  for (const tid of otherTids) threads.push(decodeThreadCore(imageName.core(tid), await read(imageName.core(tid)), tid, core.creds));
  const mmImg = imageName.mm(pid);
  const { mm, vmas, exeId } = decodeMm(mmImg, await read(mmImg), files, filesImg);
  const pagemapImg = imageName.pagemap(pid);
  const pages = decodePagemap(pagemapImg, await read(pagemapImg));
  const fsImg = imageName.fs(pid);
  const fs = decodeFs(fsImg, await read(fsImg));
  const fdinfoImg = imageName.fdinfo(ids.files_id);
  const openFiles = decodeFdinfo(fdinfoImg, await read(fdinfoImg), files, filesImg);

  const pagesEntry = manifest.files.find((f) => f.name === PAGES_FILE);
  if (pagesEntry === undefined) throw new ImageError('EMISSING', PAGES_FILE, 'is not listed in the manifest');
  checkVmas(vmas, mmImg);
  checkPageRuns(vmas, pages, pagesEntry.size, { mm: mmImg, pagemap: pagemapImg, pages: PAGES_FILE });

  const task: DumpedTask = {
    pid,
    ppid: ps.cryopod_ppid ?? ps.ppid,
    pgid: ps.pgid,
    sid: ps.sid,
    comm: core.comm,
    exe: fileById(files, exeId, filesImg, mmImg, 'exe_file_id').name,
    cwd: fileById(files, fs.cwd_id, filesImg, fsImg, 'cwd_id').name,
    root: fileById(files, fs.root_id, filesImg, fsImg, 'root_id').name,
    umask: fs.umask ?? 0o022,
    personality: core.personality,
    creds: core.creds,
    regs: core.regs,
    xsave: core.xsave,
    sigmask: core.sigmask,
    sigactions: core.sigactions,
    altstack: core.altstack,
    rseq: core.rseq,
    robustList: core.robustList,
    clearChildTid: core.clearChildTid,
    mm,
    vmas,
    pages,
    threads,
    files: openFiles,
    frozenSeconds: manifest.frozenSeconds,
  };
  return { task, pagesPath: path.join(dir, PAGES_FILE), manifest };
}
