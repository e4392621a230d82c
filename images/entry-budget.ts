/**
 * The reader's entry budget: how many entries all the images of one checkpoint may hold together (VMAs
 * counted one by one inside their mm_entry), so that what the reader and then the restorer build from
 * them stays under a fixed bound (limits.ts MAX_CHECKPOINT_ENTRIES). Each image is counted on the wire,
 * allocating nothing per entry, right after it is read and verified and before it is decoded: a
 * checkpoint over the budget is refused before its largest image costs anything.
 */
import { countEntries } from './codec';
import { countMmVmas } from './decode';
import { ImageError } from './errors';
import { MAX_CHECKPOINT_ENTRIES } from './limits';
import { ImageKind } from './magic';

const KIND_OF: Array<[RegExp, ImageKind]> = [
  [/^pstree\.img$/, 'PSTREE'],
  [/^core-\d+\.img$/, 'CORE'],
  [/^ids-\d+\.img$/, 'IDS'],
  [/^mm-\d+\.img$/, 'MM'],
  [/^pagemap-\d+\.img$/, 'PAGEMAP'],
  [/^pagemap-shmem-\d+\.img$/, 'PAGEMAP'],
  [/^memfd-inode\.img$/, 'MEMFD_INODE'],
  [/^remap-fpath\.img$/, 'REMAP_FPATH'],
  [/^files\.img$/, 'FILES'],
  [/^fdinfo-\d+\.img$/, 'FDINFO'],
  [/^fs-\d+\.img$/, 'FS'],
  [/^seccomp\.img$/, 'SECCOMP'],
];

export class EntryBudget {
  private used = 0;

  constructor(private readonly cap = MAX_CHECKPOINT_ENTRIES) {}

  /** Counts the image `name` (its verified bytes) against the budget; throws ETOOBIG when it is spent. */
  take(name: string, buf: Uint8Array): void {
    const kind = KIND_OF.find(([re]) => re.test(name))?.[1];
    if (kind === undefined) return; // inventory (one entry); pipes-data, fifo-data and ghost files (raw bytes after their entries, their own caps)
    const n = countEntries(name, kind, buf);
    let nested = 0;
    if (kind === 'MM' && n === 1) {
      // The single mm_entry's VMAs (decodeMm refuses any other count of entries).
      const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
      nested = countMmVmas(name, view.subarray(12, 12 + view.readUInt32LE(8)));
    }
    this.used += n + nested;
    if (this.used > this.cap) {
      throw new ImageError('ETOOBIG', name, `brings the checkpoint's images to ${this.used} entries (VMAs, page runs, files, ...), over the cap of ${this.cap} for one checkpoint`);
    }
  }
}
