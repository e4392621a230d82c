/**
 * images/: Cryopod checkpoints in CRIU's image format.
 *
 * A checkpoint directory holds a process tree: tasks in tree order, the root first, each parent
 * before its children (a single task is a tree of one and is written exactly as before trees). For
 * task i (pid P, 0-based i):
 *
 *   inventory.img       IMG_SERVICE  inventory_entry   img_version 2, root ids (the root task's)
 *   pstree.img          IMG_COMMON   pstree_entry      one per task, in tree order: pid, ppid (0 for the
 *                                                      root, as CRIU writes it; its real parent in
 *                                                      cryopod_ppid), pgid, sid, threads: every tid, the
 *                                                      main one (= pid) first; all as the task saw them:
 *                                                      in its own PID namespace when cryopod_pid_ns
 *   core-<P>.img                     core_entry        main thread: registers, XSAVE, sigmask, altstack,
 *                                                      rseq, robust list; task-wide (tc, ids): signal
 *                                                      actions, personality, creds, comm
 *   core-<tid>.img                   core_entry        each other thread: thread_info + thread_core only
 *                                                      (registers, XSAVE, sigmask, altstack, rseq, robust
 *                                                      list, clear_tid), no tc or ids, as CRIU writes them
 *   ids-<P>.img                      task_kobj_ids_entry  vm/files/fs/sighand ids all i+1: each task its
 *                                                      own fd table, fdinfo-<i+1>.img
 *   mm-<P>.img                       mm_entry          mm_struct fields, auxv, every VMA
 *   pagemap-<P>.img                  pagemap_head{pages_id i+1} + one pagemap_entry per run, by address
 *   files.img                        file_entry        shared by the tree, ids unique across it: REG
 *                                                      (reg_file_entry) per fd, exe, cwd, root, file-backed
 *                                                      VMA; INETSK (inet_sk_entry) per socket fd (socket.ts);
 *                                                      PIPE (pipe_entry: id, pipe_id = the pipe's inode,
 *                                                      flags O_RDONLY read end / O_WRONLY write end, fown)
 *                                                      per fd holding a pipe end
 *   fdinfo-<i+1>.img                 fdinfo_entry      per fd: fd number -> file id, type REG, INETSK or PIPE
 *   fs-<P>.img                       fs_entry          cwd, root (file ids), umask
 *   pipes-data.img      IMG_COMMON   pipe_data_entry   (only when the tree has pipes) per pipe: pipe_id,
 *                       PIPES_DATA                     bytes, size (buffer size), then exactly `bytes` raw
 *                                                      bytes, no padding (what crit's pipes_data_extra_handler
 *                                                      reads); at most 1 MiB per pipe
 *   fifo-data.img       IMG_COMMON   pipe_data_entry   (only when a FIFO held bytes) the same, keyed by the
 *                       FIFO_DATA                      fifo_entry's pipe_id; given to the FIFO's first fd
 *   remap-fpath.img     IMG_COMMON   remap_file_path_  (only with deleted files) per REG entry of a deleted
 *                       REMAP_FPATH  entry             file (an fd's, a mapping's): orig_id -> remap_id, GHOST
 *   ghost-file-<N>.img  IMG_COMMON   ghost_file_entry  then the file's contents raw to the end of the image
 *                       GHOST_FILE                     (at most 8 MiB; ghosts.ts)
 *   memfd-inode.img     IMG_COMMON   memfd_inode_entry (only with memfds) name, size, seals, inode_id (the
 *                       MEMFD_INODE                    files.img id), shmid; contents as shmem pages:
 *   pagemap-shmem-<S>.img  PAGEMAP   pagemap_head{pages_id above the tasks'} + one run from offset 0, and
 *                                                      pages-<pages_id>.img, read whole and hashed (memfds.ts)
 *   seccomp.img                      seccomp_entry     (only with seccomp filters) every filter of the tree; each
 *                                                      task's chain from thread_core.seccomp_filter via prev
 *                                                      (process-state.ts, with the rest of core-<P>.img's state)
 *   pages-<i+1>.img     raw pages, 4096 bytes each, in pagemap order, no header (native core writes it)
 *   cryopod-manifest.json  written last: format version, root pid and comm, time, frozenSeconds (the
 *                          tree's), size + sha256 of every file above
 *
 * Every .img file but the pages files:
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
 * pagemap-<P>.img against pages-<i+1>.img:
 *
 *   pagemap:  head{pages_id i+1} | {vaddr A, nr 2, PE_PRESENT} | {vaddr B, nr 4, PE_PARENT, cryopod_inherited}
 *             | {vaddr C, nr 1, PE_PRESENT} | ...
 *   pages:    [A][A+4K][C]...      offset of a run = sum of nr_pages of the PE_PRESENT runs before it * 4096
 *
 * Inherited runs (DumpedTask.inherited): pages still shared copy-on-write with the parent task, not in
 * the pages file. They carry CRIU's PE_PARENT ("the page is in the parent", so crit and CRIU do not
 * look for them in the pages file) and, since CRIU's parent is a parent *image* and ours the parent
 * *task* the child is forked from on restore, the extension cryopod_inherited = true; the reader
 * accepts PE_PARENT only with it. They must lie in anon or file-private VMAs the parent has too, not
 * overlap dumped runs, and only in a task with a parent in the tree. The reader gives
 * DumpedTask.inherited only when a task has such runs.
 *
 * Shared memory (VMA kind 'shmem', MAP_SHARED anonymous or memfd): status VMA_AREA_REGULAR |
 * VMA_ANON_SHARED for both (crit 3.17 names these bits; CRIU's VMA_AREA_MEMFD it does not, and CRIU's
 * memfd.img / shmem pagemaps are not used), shmid = the object id, cryopod_shm_size and
 * cryopod_shm_path ("/dev/zero" or "/memfd:<name>") as extensions. Its pages are in the pagemap of the
 * first task (tree order) that maps it; a later task mapping it has no pages there and must have
 * inherited the mapping from its parent (same range and offset).
 *
 * Messages come from our own proto2 files (images/proto/), field-compatible with CRIU 3.17; data CRIU
 * has no field for is in optional fields numbered >= 1000 (named cryopod_*).
 *
 * Caps the reader enforces against hostile or corrupt images (limits.ts): entry 16 MiB, image file
 * 64 MiB, manifest 4 MiB and 13376 files, 1024 tasks, 4096 threads per task and 8192 in the tree (no
 * tid twice, exactly one core image per tid), 4 Mi entries per image, 64 Ki VMAs per task (counted on
 * the wire and decoded one by one), 256 Ki entries in all the images of a checkpoint together (VMAs
 * counted one by one: entry-budget.ts, checked before each image is decoded), 4 Mi page runs,
 * 1 Mi fds, 64 sigactions, 1024 auxv words, 64 KiB XSAVE, 4096-byte paths, 64 Ki pipes of at most
 * 1 MiB each. Page runs must be page-aligned, ascending, non-overlapping, inside one anon,
 * file-private or shmem VMA, and add up to exactly the size of the task's pages file. The tree's shape
 * is checked as tree.ts describes (root first, parents before children, sessions and groups).
 */

export { PAGES_FILE, MANIFEST_FILE } from './magic';
export { ImageError } from './errors';
export type { ImageErrorCode } from './errors';
export type { Manifest, ManifestFile } from './manifest';
export { verifyManifest } from './manifest';
export { writeCheckpoint } from './write';
export { warmUp as warmImageCodecs } from './proto';
export { pagesFile } from './magic';
export { readCheckpoint } from './read';
export { summarize, formatSummary, summaryLines, isTreeSummary, protString } from './summarize';
export { socketString } from './socket';
export type { Summary, TreeSummary, VmaRow } from './summarize';
export type { ReadResult } from './read';
