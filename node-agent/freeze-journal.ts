/**
 * A record on the node's disk of every cgroup the agent is about to freeze and of the process it is
 * about to dump in it, removed once the dump is over. An agent that starts puts back whatever an earlier
 * instance left, before it does anything else: it thaws the cgroup, then rescues the process
 * (checkpoint/ rescueTree: the process and every process below it; a task parked in the parasite gets
 * its own registers back, and each of its threads, the parasite's area and fds go, a snapshot child is
 * reaped, and a group stop the dump left is SIGCONTed). This works
 * even when the Checkpoint or the Pod was deleted meanwhile, and when the dump's own guard died with the
 * agent (a container killed whole), so no pod stays frozen, stopped or infected because its agent died.
 *
 *   <stateDir>/freezes/<key>.json   { "kind": "v1" | "v2", "path": "/sys/fs/cgroup/…",
 *                                     "task"?: { "pid", "startedAt", "stoppedBefore", "treeStoppedBefore",
 *                                                "since" } }
 *
 * Only paths under a mounted cgroup hierarchy are ever written to (the file could be stale or edited);
 * a task whose start time differs from the record's is a reused PID and is left alone.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { livingDescendants, rescueTree, startTicks } from '../checkpoint';
import { CgroupMounts } from './cgroup-mounts';
import { FreezerRef, isFrozenOrFreezing, thaw } from './freezer';
import { readStatus } from './procfs';

/** The process a journalled dump works on: enough to rescue it, and to know it is still that one. */
interface JournalledTask {
  pid: number;
  startedAt: number;
  /** It was in a group stop before the dump: that stop is not ours to end. */
  stoppedBefore: boolean;
  /** Processes below it (a tree dump) that were in a group stop before the dump. */
  treeStoppedBefore?: number[];
  /** The agent's own start (clock ticks): snapshot children are younger. */
  since: number;
}

type Entry = FreezerRef & { task?: JournalledTask };

export class FreezeJournal {
  private readonly dir: string;
  constructor(stateDir: string, private readonly mounts: CgroupMounts) {
    this.dir = path.join(stateDir, 'freezes');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private file(ref: FreezerRef): string {
    return path.join(this.dir, crypto.createHash('sha256').update(`${ref.kind}:${ref.path}`).digest('hex').slice(0, 32) + '.json');
  }

  /** Before anything can freeze `ref` or touch `pid`: what a successor needs to put both back. */
  record(ref: FreezerRef, pid?: number): void {
    const f = this.file(ref);
    const entry: Entry = { kind: ref.kind, path: ref.path };
    const startedAt = pid === undefined ? undefined : startTicks(pid);
    if (pid !== undefined && startedAt !== undefined)
      entry.task = {
        pid,
        startedAt,
        stoppedBefore: readStatus(pid)?.state === 'T',
        treeStoppedBefore: livingDescendants(pid).filter((p) => readStatus(p)?.state === 'T'),
        since: startTicks('self') ?? 0,
      };
    fs.writeFileSync(`${f}.tmp`, JSON.stringify(entry));
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

  /** Thaws every journalled cgroup that still exists and rescues its journalled task; returns what it thawed. */
  async recover(log: (msg: string) => void): Promise<FreezerRef[]> {
    const thawed: FreezerRef[] = [];
    for (const name of fs.readdirSync(this.dir)) {
      const f = path.join(this.dir, name);
      if (!name.endsWith('.json')) {
        fs.rmSync(f, { force: true });
        continue;
      }
      let ref: Entry;
      try {
        ref = JSON.parse(fs.readFileSync(f, 'utf8')) as Entry;
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
        if (ref.task) await this.rescue(ref.task, log);
      } else {
        log(`ignoring freeze journal entry ${name}: not a cgroup directory this agent may write`);
      }
      fs.rmSync(f, { force: true });
    }
    return thawed;
  }

  private async rescue(t: JournalledTask, log: (msg: string) => void): Promise<void> {
    if (![t.pid, t.startedAt, t.since].every((n) => Number.isInteger(n) && n >= 0) || t.pid === 0) return;
    if (startTicks(t.pid) !== t.startedAt) return; // gone, or a reused PID: not ours
    const tree = Array.isArray(t.treeStoppedBefore) ? t.treeStoppedBefore.filter((p) => Number.isInteger(p) && p > 0) : [];
    try {
      // The process and every process below it (a tree dump infects and stops each in turn).
      const stoppedBefore = [...(t.stoppedBefore ? [t.pid] : []), ...tree];
      for (const { pid, report: r } of await rescueTree({ pid: t.pid, childrenSince: t.since, stoppedBefore })) {
        if (!r.gone && (r.infected || r.childrenReaped > 0 || r.resumed))
          log(
            `put back pid ${pid} left by an earlier agent's dump: parasite removed ${r.infected}, registers restored ${r.registersRestored}, ` +
              `fds closed ${r.fdsClosed}, snapshot children reaped ${r.childrenReaped}, resumed ${r.resumed}, threads restored ${r.threadsRestored}`,
          );
      }
    } catch (err) {
      log(`could not put back pid ${t.pid} left by an earlier agent's dump: ${(err as Error).message}`);
    }
  }
}
