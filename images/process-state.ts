/**
 * Process state besides memory and files (DumpedTask.processState, ThreadState.threadState) in CRIU's
 * places: task_core_entry (timers, rlimits, signals_s, oom_score_adj, child_subreaper), thread_core_entry
 * (sched_nice, sched_policy, sched_prio, pdeath_sig, signals_p, seccomp_mode, seccomp_filter),
 * creds_entry (cap_* as two u32 words, secbits) and seccomp.img (every filter of the checkpoint, each
 * linked by `prev` to the one installed before it). Cryopod's own: cryopod_no_new_privs (tc),
 * cryopod_affinity (thread_core), cryopod_cap_amb (creds).
 *
 * An image without tc.rlimits was written before this state was saved: it decodes to no processState
 * (the restore keeps the stub's). With it, every part must be there.
 */
import type { ProcessState, ThreadProcessState } from '../native/lib/types';
import { ImageError } from './errors';
import { encodeEntry, messages } from './proto';
import { bigintOf, numberOf, u64FromBigInt, u64FromNumber, WireU64 } from './u64';

const SIGINFO_BYTES = 128;
const NUM_RLIMITS = 16;
const MAX_SIGNALS = 4096;
const MAX_TIMERS = 4096;
const MAX_FILTERS = 64;
const MAX_FILTER_BYTES = 4096 * 8;
const SECCOMP_MODE_FILTER = 2;
const U32 = 0xffff_ffffn;

function words(v: bigint): number[] {
  return [Number(v & U32), Number((v >> 32n) & U32)];
}
function fromWords(w: number[] | undefined, file: string, what: string): bigint {
  if (w === undefined || w.length === 0) return 0n;
  if (w.length > 2) throw new ImageError('EDECODE', file, `${what} has ${w.length} words, not 2`);
  return BigInt(w[0] >>> 0) | (BigInt((w[1] ?? 0) >>> 0) << 32n);
}

function queue(signals: Buffer[], what: string): { signals: Array<{ siginfo: Buffer }> } {
  if (signals.length > MAX_SIGNALS) throw new ImageError('EINVAL', undefined, `${what}: ${signals.length} pending signals, over ${MAX_SIGNALS}`);
  return {
    signals: signals.map((b, i) => {
      if (b.length !== SIGINFO_BYTES) throw new ImageError('EINVAL', undefined, `${what}[${i}] is ${b.length} bytes, not a siginfo_t`);
      return { siginfo: b };
    }),
  };
}
function unqueue(q: { signals?: Array<{ siginfo: Buffer }> } | undefined, file: string, what: string): Buffer[] {
  const list = q?.signals ?? [];
  if (list.length > MAX_SIGNALS) throw new ImageError('ETOOBIG', file, `${what}: ${list.length} pending signals, over the cap of ${MAX_SIGNALS}`);
  return list.map((s, i) => {
    if (s.siginfo.length !== SIGINFO_BYTES) throw new ImageError('EDECODE', file, `${what}[${i}] is ${s.siginfo.length} bytes, not a siginfo_t`);
    return Buffer.from(s.siginfo);
  });
}

const usParts = (us: number, what: string) => ({ sec: u64FromNumber(Math.floor(us / 1e6), what), usec: u64FromNumber(us % 1e6, what) });

/** The tc fields of a task's core. */
export function taskCoreFields(ps: ProcessState | undefined): Record<string, unknown> {
  if (ps === undefined) return {};
  const itimer = (t: { intervalUs: number; valueUs: number }, what: string) => {
    const i = usParts(t.intervalUs, what), v = usParts(t.valueUs, what);
    return { isec: i.sec, iusec: i.usec, vsec: v.sec, vusec: v.usec };
  };
  if (ps.itimers.length !== 3) throw new ImageError('EINVAL', undefined, 'processState.itimers must hold REAL, VIRTUAL and PROF');
  if (ps.posixTimers.length > MAX_TIMERS) throw new ImageError('EINVAL', undefined, `${ps.posixTimers.length} POSIX timers, over ${MAX_TIMERS}`);
  return {
    timers: {
      real: itimer(ps.itimers[0], 'itimers[0]'),
      virt: itimer(ps.itimers[1], 'itimers[1]'),
      prof: itimer(ps.itimers[2], 'itimers[2]'),
      posix: ps.posixTimers.map((t, i) => ({
        it_id: t.id, clock_id: t.clock >>> 0, si_signo: t.signo, it_sigev_notify: t.notify, sival_ptr: u64FromBigInt(t.sigval, `posixTimers[${i}].sigval`),
        overrun: t.overrun,
        isec: u64FromNumber(Math.floor(t.intervalNs / 1e9), `posixTimers[${i}]`), insec: u64FromNumber(t.intervalNs % 1e9, `posixTimers[${i}]`),
        vsec: u64FromNumber(Math.floor(t.valueNs / 1e9), `posixTimers[${i}]`), vnsec: u64FromNumber(t.valueNs % 1e9, `posixTimers[${i}]`),
        ...(t.notifyTid !== 0 ? { notify_thread_id: t.notifyTid } : {}),
      })),
    },
    rlimits: { rlimits: ps.rlimits.map((r, i) => ({ cur: u64FromBigInt(r.cur, `rlimits[${i}].cur`), max: u64FromBigInt(r.max, `rlimits[${i}].max`) })) },
    signals_s: queue(ps.sharedSignals, 'sharedSignals'),
    oom_score_adj: ps.oomScoreAdj,
    child_subreaper: ps.childSubreaper,
    cryopod_no_new_privs: ps.noNewPrivs,
  };
}

/** The thread_core fields of a thread; `seccompNewest` is its chain's newest filter in seccomp.img. */
export function threadCoreFields(ts: ThreadProcessState | undefined, seccompNewest: number | undefined, what: string): Record<string, unknown> {
  if (ts === undefined) return {};
  return {
    sched_nice: ts.nice,
    sched_policy: ts.policy,
    sched_prio: ts.rtPriority,
    pdeath_sig: ts.pdeathSignal,
    signals_p: queue(ts.pendingSignals, `${what}pendingSignals`),
    cryopod_affinity: ts.affinity.map((w, i) => u64FromBigInt(w, `${what}affinity[${i}]`)),
    ...(seccompNewest !== undefined ? { seccomp_mode: SECCOMP_MODE_FILTER, seccomp_filter: seccompNewest } : {}),
  };
}

/** The capability fields of creds_entry. */
export function credsCapsFields(ps: ProcessState | undefined): Record<string, unknown> {
  if (ps === undefined) return { secbits: 0 };
  const c = ps.caps;
  return {
    cap_inh: words(c.inheritable), cap_prm: words(c.permitted), cap_eff: words(c.effective), cap_bnd: words(c.bounding),
    secbits: c.securebits, cryopod_cap_amb: words(c.ambient),
  };
}

/** seccomp.img of a checkpoint: each task's chain appended oldest first. */
export class SeccompTable {
  private readonly filters: Array<{ filter: Buffer; prev?: number; flags: number }> = [];

  /** Adds a chain and returns the index of its newest filter (undefined for none). */
  add(chain: ProcessState['seccomp'] | undefined): number | undefined {
    if (chain === undefined || chain.length === 0) return undefined;
    if (chain.length > MAX_FILTERS) throw new ImageError('EINVAL', undefined, `${chain.length} seccomp filters, over ${MAX_FILTERS}`);
    let prev: number | undefined;
    for (const f of chain) {
      if (f.insns.length === 0 || f.insns.length % 8 !== 0 || f.insns.length > MAX_FILTER_BYTES) {
        throw new ImageError('EINVAL', undefined, `a seccomp filter of ${f.insns.length} bytes is not 1 to 4096 BPF instructions`);
      }
      this.filters.push({ filter: f.insns, ...(prev !== undefined ? { prev } : {}), flags: f.flags });
      prev = this.filters.length - 1;
    }
    return prev;
  }

  get empty(): boolean {
    return this.filters.length === 0;
  }

  encode(): Uint8Array {
    return encodeEntry(messages().seccomp, { seccomp_filters: this.filters });
  }
}

export interface SeccompMsg {
  seccomp_filters: Array<{ filter: Buffer; prev?: number; flags?: number }>;
}

/** A chain back from its newest filter, oldest first. */
export function seccompChain(img: SeccompMsg | undefined, newest: number, file: string): ProcessState['seccomp'] {
  const all = img?.seccomp_filters ?? [];
  const chain: ProcessState['seccomp'] = [];
  for (let i: number | undefined = newest; i !== undefined; i = all[i].prev) {
    if (i >= all.length || chain.length >= MAX_FILTERS) throw new ImageError('EDECODE', file, `seccomp filter ${i} is not in seccomp.img or the chain is too long`);
    if (all[i].filter.length > MAX_FILTER_BYTES) throw new ImageError('ETOOBIG', file, `seccomp filter ${i} is over ${MAX_FILTER_BYTES} bytes`);
    chain.unshift({ insns: Buffer.from(all[i].filter), flags: all[i].flags ?? 0 });
    if (all[i].prev !== undefined && all[i].prev! >= i) throw new ImageError('EDECODE', file, `seccomp filter ${i} names a later one as its previous`);
  }
  return chain;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- decoded protobuf objects, checked field by field */
const secUs = (sec: WireU64, sub: WireU64, per: number, file: string, what: string): number =>
  numberOf(sec, file, what) * per + numberOf(sub, file, what);

/** processState from a main thread's core (undefined for images from before it was saved). */
export function processStateOf(file: string, tc: any, th: any, seccomp: SeccompMsg | undefined): ProcessState | undefined {
  if (tc.rlimits === undefined) return undefined;
  const timers = tc.timers;
  if (timers === undefined) throw new ImageError('EDECODE', file, 'has rlimits but no timers');
  const rl = tc.rlimits.rlimits ?? [];
  if (rl.length > NUM_RLIMITS) throw new ImageError('ETOOBIG', file, `${rl.length} rlimits, over ${NUM_RLIMITS}`);
  const posix = timers.posix ?? [];
  if (posix.length > MAX_TIMERS) throw new ImageError('ETOOBIG', file, `${posix.length} POSIX timers, over the cap of ${MAX_TIMERS}`);
  const it = (e: any, what: string) => ({ intervalUs: secUs(e.isec, e.iusec, 1e6, file, what), valueUs: secUs(e.vsec, e.vusec, 1e6, file, what) });
  const c = th.creds ?? {};
  return {
    rlimits: rl.map((r: any) => ({ cur: bigintOf(r.cur), max: bigintOf(r.max) })),
    itimers: [it(timers.real, 'timers.real'), it(timers.virt, 'timers.virt'), it(timers.prof, 'timers.prof')],
    posixTimers: posix.map((p: any, i: number) => ({
      id: p.it_id, clock: p.clock_id | 0, signo: p.si_signo, notify: p.it_sigev_notify, notifyTid: p.notify_thread_id ?? 0,
      sigval: bigintOf(p.sival_ptr), overrun: p.overrun,
      intervalNs: secUs(p.isec, p.insec, 1e9, file, `posix[${i}]`), valueNs: secUs(p.vsec, p.vnsec, 1e9, file, `posix[${i}]`),
    })),
    sharedSignals: unqueue(tc.signals_s, file, 'signals_s'),
    oomScoreAdj: tc.oom_score_adj ?? 0,
    childSubreaper: tc.child_subreaper === true,
    noNewPrivs: tc.cryopod_no_new_privs === true,
    seccomp: th.seccomp_mode === SECCOMP_MODE_FILTER ? seccompChain(seccomp, th.seccomp_filter ?? 0, file) : [],
    caps: {
      inheritable: fromWords(c.cap_inh, file, 'cap_inh'), permitted: fromWords(c.cap_prm, file, 'cap_prm'),
      effective: fromWords(c.cap_eff, file, 'cap_eff'), bounding: fromWords(c.cap_bnd, file, 'cap_bnd'),
      ambient: fromWords(c.cryopod_cap_amb, file, 'cryopod_cap_amb'), securebits: c.secbits ?? 0,
    },
  };
}

/** threadState from a thread_core (undefined when the image has none). */
export function threadProcessStateOf(file: string, th: any): ThreadProcessState | undefined {
  if (th.sched_policy === undefined) return undefined;
  const aff: WireU64[] = th.cryopod_affinity ?? [];
  if (aff.length > 4096) throw new ImageError('ETOOBIG', file, `an affinity mask of ${aff.length} words`);
  return {
    nice: th.sched_nice ?? 0,
    policy: th.sched_policy,
    rtPriority: th.sched_prio ?? 0,
    affinity: aff.map(bigintOf),
    pdeathSignal: th.pdeath_sig ?? 0,
    pendingSignals: unqueue(th.signals_p, file, 'signals_p'),
  };
}
