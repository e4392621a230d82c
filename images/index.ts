/**
 * images/: Cryopod checkpoints in CRIU's image format.
 *
 * A checkpoint directory (one task, one or more threads):
 *
 *   inventory.img       IMG_SERVICE  inventory_entry   img_version 2, root ids
 *   pstree.img          IMG_COMMON   pstree_entry      pid (ppid 0, as CRIU's root task), pgid, sid,
 *                                                      threads: every tid, the main one (= pid) first
 *   core-<pid>.img                   core_entry        main thread: registers, XSAVE, sigmask, altstack,
 *                                                      rseq, robust list; task-wide (tc, ids): signal
 *                                                      actions, personality, creds, comm
 *   core-<tid>.img                   core_entry        each other thread: thread_info + thread_core only
 *                                                      (registers, XSAVE, sigmask, altstack, rseq, robust
 *                                                      list, clear_tid), no tc or ids, as CRIU writes them
 *   ids-<pid>.img                    task_kobj_ids_entry  files_id names fdinfo-<files_id>.img
 *   mm-<pid>.img                     mm_entry          mm_struct fields, auxv, every VMA
 *   pagemap-<pid>.img                pagemap_head + one pagemap_entry per run of dumped pages
 *   files.img                        file_entry        REG (reg_file_entry) per fd, exe, cwd, root,
 *                                                      file-backed VMA; INETSK (inet_sk_entry) per socket
 *                                                      fd: family, type, proto, state LISTEN/CLOSE, src
 *                                                      port and address, backlog, SO_REUSEADDR/PORT,
 *                                                      v6only (socket.ts)
 *   fdinfo-1.img                     fdinfo_entry      per fd: fd number -> file id, type REG or INETSK
 *   fs-<pid>.img                     fs_entry          cwd, root (file ids), umask
 *   pages-1.img         raw pages, 4096 bytes each, in pagemap order, no header (native core writes it)
 *   cryopod-manifest.json  written last: format version, pid, comm, time, frozenSeconds,
 *                          size + sha256 of every file above
 *
 * Every .img file but pages-1.img:
 *
 *   offset 0          4                 8
 *          +---------+-----------------+--------+------------------+--------+------------------+--
 *          | magic 1 | magic 2         | len 0  | protobuf entry 0 | len 1  | protobuf entry 1 | ...
 *          | u32 LE  | u32 LE          | u32 LE | len 0 bytes      | u32 LE | len 1 bytes      |
 *          +---------+-----------------+--------+------------------+--------+------------------+--
 *          IMG_COMMON   per image type              (CRIU's images v1.1; `crit decode` reads them)
 *          0x54564319   e.g. MM 0x57492820
 *          (IMG_SERVICE 0x55105940 for inventory.img)
 *
 * pagemap-<pid>.img against pages-1.img:
 *
 *   pagemap:  head{pages_id 1} | {vaddr A, nr 2} | {vaddr B, nr 1} | ...
 *   pages:    [A][A+4K][B]...      offset of a run = sum of nr_pages before it * 4096
 *
 * Messages come from our own proto2 files (images/proto/), field-compatible with CRIU 3.17; data CRIU
 * has no field for is in optional fields numbered >= 1000 (named cryopod_*).
 *
 * Caps the reader enforces against hostile or corrupt images (limits.ts): entry 16 MiB, image file
 * 64 MiB, manifest 1 MiB and 4160 files, 4096 threads (no tid twice, exactly one core image per tid),
 * 4 Mi entries per image, 1 Mi VMAs, 4 Mi page runs, 1 Mi fds, 64 sigactions, 1024 auxv words,
 * 64 KiB XSAVE, 4096-byte paths. Page runs must be page-aligned, ascending, non-overlapping, inside
 * one anon or file-private VMA, and add up to exactly the size of pages-1.img.
 */

export { PAGES_FILE, MANIFEST_FILE } from './magic';
export { ImageError } from './errors';
export type { ImageErrorCode } from './errors';
export type { Manifest, ManifestFile } from './manifest';
export { verifyManifest } from './manifest';
export { writeCheckpoint } from './write';
export { readCheckpoint } from './read';
export { summarize, formatSummary, protString } from './summarize';
export { socketString } from './socket';
export type { Summary, VmaRow } from './summarize';
