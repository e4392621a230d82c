/**
 * A record on the node's disk of a checkpoint whose dump is finished and whose upload to the image store
 * has begun, removed once its final status is written. An agent killed in the middle of the upload leaves
 * it behind, and the next agent on the node finishes the work from it instead of failing it: the images
 * are whole in the node's root (the dump was over, the pod already thawed or, with leaveRunning: false,
 * already gone, so they may be the only copy), and the store skips the files an earlier try stored whole.
 *
 *   <stateDir>/uploads/<checkpoint uid>.json   { claim, result }   (result: what the status will say)
 *
 * The claim ties the record to one claim of one Checkpoint: a record is used only for the object whose
 * status still names that claim.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SuccessResult } from './status';

/** The result of the dump, before the upload gives it its imageLocation and upload time. */
export type DumpedResult = Omit<SuccessResult, 'imageLocation'>;

export interface PendingUpload {
  claim: string;
  result: DumpedResult;
}

const UID = /^[0-9a-f][0-9a-f-]{0,63}$/;

export class UploadJournal {
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'uploads');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private file(uid: string): string {
    if (!UID.test(uid)) throw new Error(`checkpoint UID ${JSON.stringify(uid)} is not a UID`);
    return path.join(this.dir, `${uid}.json`);
  }

  record(uid: string, pending: PendingUpload): void {
    const f = this.file(uid);
    fs.writeFileSync(`${f}.tmp`, JSON.stringify(pending), { mode: 0o600 });
    fs.renameSync(`${f}.tmp`, f);
  }

  /** The record of this Checkpoint's upload, if one is there and readable. */
  read(uid: string): PendingUpload | undefined {
    try {
      const v = JSON.parse(fs.readFileSync(this.file(uid), 'utf8')) as PendingUpload;
      return typeof v.claim === 'string' && typeof v.result === 'object' && v.result !== null && Array.isArray(v.result.containers) ? v : undefined;
    } catch {
      return undefined;
    }
  }

  forget(uid: string): void {
    if (UID.test(uid)) fs.rmSync(this.file(uid), { force: true });
  }
}
