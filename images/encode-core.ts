/**
 * core-<tid>.img of every thread (CRIU core_entry): the main thread's carries the task-wide parts (tc,
 * creds, comm, the process state of process-state.ts), every other thread's thread_info and
 * thread_core only. Split out of encode.ts, which lays out the whole checkpoint.
 */
import { DumpedTask, ThreadState } from '../native/lib/types';
import { ImageError } from './errors';
import { MAX_SIGACTIONS, MAX_THREADS, MAX_XSAVE_BYTES } from './limits';
import { encodeEntry, messages } from './proto';
import { credsCapsFields, taskCoreFields, threadCoreFields } from './process-state';
import { requireSafe, u64FromBigInt, u64FromNumber } from './u64';
import { MARCH_X86_64, TASK_ALIVE } from './wire';
import { fpregsFromXsave, gpregsFromBuffer } from './x86';

export function u32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new ImageError('EINVAL', undefined, `${what} is ${v}, not a u32`);
  return v;
}

function encodeSigactions(task: DumpedTask): object[] {
  if (task.sigactions.length > MAX_SIGACTIONS) throw new ImageError('EINVAL', undefined, `${task.sigactions.length} sigactions, over the cap of ${MAX_SIGACTIONS}`);
  const seen = new Set<number>();
  return task.sigactions.map((sa, i) => {
    const what = `sigactions[${i}]`;
    if (!Number.isInteger(sa.signo) || sa.signo < 1 || sa.signo > 64 || seen.has(sa.signo)) {
      throw new ImageError('EINVAL', undefined, `${what}.signo ${sa.signo} is not a distinct signal number in 1..64`);
    }
    seen.add(sa.signo);
    return {
      sigaction: u64FromBigInt(sa.handler, `${what}.handler`),
      flags: u64FromBigInt(sa.flags, `${what}.flags`),
      restorer: u64FromBigInt(sa.restorer, `${what}.restorer`),
      mask: u64FromBigInt(sa.mask, `${what}.mask`),
      cryopod_signo: sa.signo,
    };
  });
}

/**
 * The per-thread state of the main thread (top level of the DumpedTask) or of another thread.
 * `what` prefixes field names in error messages: '' for the main thread, 'threads[i] (tid N).' else.
 */
function encodeThreadInfo(t: ThreadState, what: string): object {
  if (t.xsave.length > MAX_XSAVE_BYTES) throw new ImageError('EINVAL', undefined, `${what}xsave is ${t.xsave.length} bytes, over the cap of ${MAX_XSAVE_BYTES}`);
  return {
    clear_tid_addr: u64FromNumber(t.clearChildTid, `${what}clearChildTid`),
    gpregs: gpregsFromBuffer(t.regs, `${what}regs`),
    fpregs: fpregsFromXsave(t.xsave, `${what}xsave`),
  };
}

function encodeThreadCore(t: ThreadState, what: string, seccompNewest?: number): Record<string, unknown> {
  const th: Record<string, unknown> = {
    futex_rla: u64FromNumber(t.robustList.head, `${what}robustList.head`),
    futex_rla_len: u32(t.robustList.len, `${what}robustList.len`),
    blk_sigset: u64FromBigInt(t.sigmask, `${what}sigmask`),
    sas: {
      ss_sp: u64FromNumber(t.altstack.sp, `${what}altstack.sp`),
      ss_size: u64FromNumber(t.altstack.size, `${what}altstack.size`),
      ss_flags: u32(t.altstack.flags, `${what}altstack.flags`),
    },
    ...threadCoreFields(t.threadState, seccompNewest, what),
  };
  if (t.rseq !== null) {
    th.rseq_entry = {
      rseq_abi_pointer: u64FromNumber(t.rseq.ptr, `${what}rseq.ptr`),
      rseq_abi_size: u32(t.rseq.size, `${what}rseq.size`),
      signature: u32(t.rseq.signature, `${what}rseq.signature`),
    };
  }
  return th;
}

/** The main thread's core: its thread state plus the task-wide parts (tc, ids, creds, comm). */
export function encodeCore(task: DumpedTask, ids: object, seccompNewest: number | undefined): Uint8Array {
  const c = task.creds;
  const main: ThreadState = {
    tid: task.pid, regs: task.regs, xsave: task.xsave, sigmask: task.sigmask, altstack: task.altstack, rseq: task.rseq,
    robustList: task.robustList, clearChildTid: task.clearChildTid, threadState: task.threadState,
  };
  return encodeEntry(messages().core, {
    mtype: MARCH_X86_64,
    thread_info: encodeThreadInfo(main, ''),
    tc: {
      task_state: TASK_ALIVE,
      exit_code: 0,
      personality: u32(task.personality, 'personality'),
      flags: 0,
      blk_sigset: u64FromBigInt(task.sigmask, 'sigmask'),
      comm: task.comm,
      sigactions: encodeSigactions(task),
      ...taskCoreFields(task.processState),
    },
    ids,
    thread_core: {
      ...encodeThreadCore(main, '', seccompNewest),
      creds: {
        uid: u32(c.uid, 'creds.uid'), gid: u32(c.gid, 'creds.gid'),
        euid: u32(c.euid, 'creds.euid'), egid: u32(c.egid, 'creds.egid'),
        suid: u32(c.suid, 'creds.suid'), sgid: u32(c.sgid, 'creds.sgid'),
        fsuid: u32(c.fsuid, 'creds.fsuid'), fsgid: u32(c.fsgid, 'creds.fsgid'),
        ...credsCapsFields(task.processState),
      },
      comm: task.comm,
    },
  });
}

/**
 * Another thread's core, as CRIU writes it (core_entry_alloc(1, 0) in criu/pstree.c): thread_info
 * and thread_core only; tc and ids are task-wide and live in the main thread's core alone. Creds
 * are task-wide for Cryopod (threads share the main thread's), so they are not repeated here.
 */
export function encodeThreadCoreImage(t: ThreadState, what: string, seccompNewest: number | undefined): Uint8Array {
  return encodeEntry(messages().core, {
    mtype: MARCH_X86_64,
    thread_info: encodeThreadInfo(t, what),
    thread_core: encodeThreadCore(t, what, seccompNewest),
  });
}

/** Checks DumpedTask.threads: at most MAX_THREADS - 1, ascending by tid, none of them the main thread. */
export function checkThreads(task: DumpedTask): void {
  const threads = task.threads;
  if (threads.length + 1 > MAX_THREADS) {
    throw new ImageError('EINVAL', undefined, `${threads.length + 1} threads, over the cap of ${MAX_THREADS}`);
  }
  threads.forEach((t, i) => {
    const what = `threads[${i}] (tid ${t.tid})`;
    if (requireSafe(u32(t.tid, `threads[${i}].tid`), `threads[${i}].tid`) === 0) throw new ImageError('EINVAL', undefined, `${what}: tid is 0`);
    if (t.tid === task.pid) throw new ImageError('EINVAL', undefined, `${what} is the main thread, whose state is at the top level of the task`);
    if (i > 0 && t.tid <= threads[i - 1].tid) {
      throw new ImageError('EINVAL', undefined, `${what} is not ascending by tid (the one before is tid ${threads[i - 1].tid})`);
    }
  });
}
