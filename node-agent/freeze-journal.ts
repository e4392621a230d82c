/**
 * A record on the node's disk of every cgroup the agent is about to freeze, removed once it is thawed.
 * An agent that starts thaws whatever an earlier instance left in it, before it does anything else: this
 * works even when the Checkpoint or the Pod was deleted meanwhile, so no pod stays frozen because its
 * agent died.
 *
 *   <stateDir>/freezes/<key>.json   { "kind": "v1" | "v2", "path": "/sys/fs/cgroup/…" }
 *
 * Only paths under a mounted cgroup hierarchy are ever written to (the file could be stale or edited).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { CgroupMounts } from './cgroup-mounts';
import { FreezerRef, isFrozenOrFreezing, thaw } from './freezer';

export class FreezeJournal {
  private readonly dir: string;
  constructor(stateDir: string, private readonly mounts: CgroupMounts) {
    this.dir = path.join(stateDir, 'freezes');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private file(ref: FreezerRef): string {
    return path.join(this.dir, crypto.createHash('sha256').update(`${ref.kind}:${ref.path}`).digest('hex').slice(0, 32) + '.json');
  }

  record(ref: FreezerRef): void {
    const f = this.file(ref);
    fs.writeFileSync(`${f}.tmp`, JSON.stringify(ref));
    fs.renameSync(`${f}.tmp`, f);
  }

  forget(ref: FreezerRef): void {
    fs.rmSync(this.file(ref), { force: true });
  }

  /** Is this directory inside the mounted hierarchy of its kind? */
  private allowed(ref: FreezerRef): boolean {
    const mount = ref.kind === 'v1' ? this.mounts.freezerV1 : this.mounts.v2;
    if (!mount || !path.isAbsolute(ref.path)) return false;
    const rel = path.relative(mount.mountPoint, path.normalize(ref.path));
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  }

  /** Thaws every journalled cgroup that still exists; returns what it thawed. */
  async recover(log: (msg: string) => void): Promise<FreezerRef[]> {
    const thawed: FreezerRef[] = [];
    for (const name of fs.readdirSync(this.dir)) {
      const f = path.join(this.dir, name);
      if (!name.endsWith('.json')) {
        fs.rmSync(f, { force: true });
        continue;
      }
      let ref: FreezerRef;
      try {
        ref = JSON.parse(fs.readFileSync(f, 'utf8')) as FreezerRef;
      } catch {
        fs.rmSync(f, { force: true });
        continue;
      }
      if ((ref.kind === 'v1' || ref.kind === 'v2') && this.allowed(ref) && fs.existsSync(ref.path)) {
        if (isFrozenOrFreezing(ref)) {
          await thaw(ref);
          thawed.push(ref);
          log(`thawed cgroup ${ref.path} (${ref.kind}) left frozen by an earlier agent`);
        }
      } else {
        log(`ignoring freeze journal entry ${name}: not a cgroup directory this agent may write`);
      }
      fs.rmSync(f, { force: true });
    }
    return thawed;
  }
}
