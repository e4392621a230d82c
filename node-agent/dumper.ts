/**
 * One container's main process into one image directory, through the checkpoint library
 * (checkpoint/ dumpProcess: native dump + CRIU images + manifest).
 *
 * Two freeze modes (config --freeze-mode):
 *   native  the native core freezes the container's cgroup, seizes every thread while frozen, thaws into
 *           the ptrace stops and dumps; downtime = its frozenSeconds. The default.
 *   agent   for a native core without the freezer option: the agent freezes the cgroup, re-checks that the
 *           process is still the one it resolved and still in the cgroup, thaws, then dumps (ptrace seize
 *           would block on a frozen task). Downtime = the agent's frozen time + the native stop time.
 *
 * Either way the cgroup is journalled before anything can freeze it (freeze-journal.ts), so an agent
 * killed in the middle leaves something its successor thaws.
 */
import { dumpProcess } from '../checkpoint';
import { FreezeJournal } from './freeze-journal';
import * as fs from 'fs';
import { FreezerRef, freeze, isFrozenOrFreezing, thaw, withFrozen } from './freezer';

export type FreezeMode = 'native' | 'agent';

export interface DumpRequest {
  pid: number;
  dir: string;
  leaveRunning: boolean;
  freezer: FreezerRef;
  /** Called while frozen, right before the dump: the last check that the PID is still the target. */
  recheck: () => void;
}

export interface DumpOutcome {
  pages: number;
  bytes: number;
  frozenSeconds: number;
  dumpSeconds: number;
}

export type DumpFn = (opts: Parameters<typeof dumpProcess>[0]) => ReturnType<typeof dumpProcess>;

export interface TestHooks {
  /**
   * Integration tests only: freeze the cgroup, create this file, and wait until the process is killed,
   * to stand in for an agent that dies in the middle of a dump.
   */
  pauseAfterFreezeFile?: string;
  /** Integration tests only: the dump's stepping hook (checkpoint/ dumpProcess phaseFd), to kill the agent at a phase. */
  phaseFd?: number;
}

export class Dumper {
  constructor(
    private readonly journal: FreezeJournal,
    private readonly mode: FreezeMode,
    private readonly dump: DumpFn = dumpProcess,
    private readonly hooks: TestHooks = {},
  ) {}

  async run(req: DumpRequest): Promise<DumpOutcome> {
    this.journal.record(req.freezer, req.pid);
    try {
      if (this.hooks.pauseAfterFreezeFile) await this.pauseFrozen(req.freezer, this.hooks.pauseAfterFreezeFile);
      const t0 = process.hrtime.bigint();
      let agentFrozen = 0;
      if (this.mode === 'agent') {
        agentFrozen = (await withFrozen(req.freezer, async () => req.recheck())).frozenSeconds;
      } else {
        req.recheck();
      }
      const s = await this.dump({
        pid: req.pid,
        dir: req.dir,
        leaveRunning: req.leaveRunning,
        ...(this.hooks.phaseFd !== undefined ? { phaseFd: this.hooks.phaseFd } : {}),
        ...(this.mode === 'native' ? { freezer: { kind: req.freezer.kind, path: req.freezer.path } } : {}),
      });
      return {
        pages: s.pages,
        bytes: s.bytes,
        frozenSeconds: agentFrozen + s.frozenSeconds,
        dumpSeconds: Number(process.hrtime.bigint() - t0) / 1e9,
      };
    } finally {
      // The guard: whatever happened above (or inside the native core), the cgroup leaves here thawed.
      if (isFrozenOrFreezing(req.freezer)) await thaw(req.freezer);
      this.journal.forget(req.freezer);
    }
  }

  private async pauseFrozen(ref: FreezerRef, marker: string): Promise<never> {
    await freeze(ref);
    fs.writeFileSync(marker, `${process.pid}\n`);
    for (;;) await new Promise((r) => setTimeout(r, 1000));
  }
}
