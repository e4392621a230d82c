/**
 * Caps on what the reader accepts. Images come from shared storage that another tenant or a broken
 * upload may have touched, so no length or count read from a file is trusted before it is compared
 * with one of these. Each is far above what a real process produces.
 */

/** One protobuf entry (the largest real one is mm-<pid>.img with every VMA: ~100 bytes each). */
export const MAX_ENTRY_BYTES = 16 * 1024 * 1024;
/** One metadata image file, read whole into memory. */
export const MAX_IMAGE_BYTES = 64 * 1024 * 1024;
/** The manifest JSON (a tree at the task and thread caps lists some 13000 files of ~130 bytes). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Threads of one task, the main thread included (each has a core-<tid>.img). */
export const MAX_THREADS = 4096;
/** Tasks (processes) of one checkpointed tree (entries of pstree.img). */
export const MAX_TASKS = 1024;
/** Threads of all the tasks of a tree together, main threads included. */
export const MAX_TREE_THREADS = 8192;
/**
 * Files listed in a manifest: one core image per thread, five more per task (ids, mm, pagemap, fs,
 * fdinfo) and its pages file, plus the few tree-wide images.
 */
export const MAX_MANIFEST_FILES = MAX_TREE_THREADS + 5 * MAX_TASKS + 64;
/** Bytes saved of one pipe (the kernel's default pipe-max-size, what a restore can put back unprivileged). */
export const MAX_PIPE_BYTES = 1024 * 1024;
/** Contents of one memfd held as an fd (kept in its files.img entry, under MAX_ENTRY_BYTES). */
export const MAX_MEMFD_BYTES = 8 * 1024 * 1024;
/** Pipes of one tree (entries of pipes-data.img). */
export const MAX_PIPES = 64 * 1024;
/** Entries in one image file, checked while framing, before any protobuf decoding. */
export const MAX_ENTRIES = 4 * 1024 * 1024;
/** VMAs of one task: the kernel's default vm.max_map_count (65530), rounded up. */
export const MAX_VMAS = 64 * 1024;
/** Page runs in one pagemap. */
export const MAX_PAGE_RUNS = 4 * 1024 * 1024;
/** Open files of one task (the kernel's fs.nr_open ceiling is 2^20). */
export const MAX_FDS = 1024 * 1024;
/** Signal actions (signals 1..64). */
export const MAX_SIGACTIONS = 64;
/** Words of the saved auxv (the kernel keeps fewer than 100). */
export const MAX_AUXV_WORDS = 1024;
/** XSAVE area (AVX-512 is 2.7 KiB, AMX about 11 KiB). */
export const MAX_XSAVE_BYTES = 64 * 1024;
/** Length of a path or a name (PATH_MAX is 4096). */
export const MAX_PATH_BYTES = 4096;
/**
 * Entries of all the images of one checkpoint together, VMAs counted one by one (entry-budget.ts): what
 * bounds the memory the reader and the restorer spend on an image, whatever it claims. At the cap, a
 * restore's peak stays within 64 MiB above that of a small checkpoint, plus the images' own size
 * (cli/hostile-memory.test.ts measures it).
 */
export const MAX_CHECKPOINT_ENTRIES = 256 * 1024;
