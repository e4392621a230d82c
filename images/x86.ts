/**
 * x86_64 register state between the native core's raw kernel buffers and CRIU's core-x86 messages.
 *
 * - regs: struct user_regs_struct, 27 little-endian u64 in the order of user_x86_regs_entry's fields
 *   1..27, so the mapping is positional and exact both ways.
 * - xsave: the XSAVE area of PTRACE_GETREGSET(NT_X86_XSTATE), standard (non-compacted) format:
 *
 *     0    FXSAVE legacy region: fcw fsw ftw fop | fpu ip | fpu dp | mxcsr mxcsr_mask | st0-7 | xmm0-15
 *     512  XSAVE header: xstate_bv (u64) ...
 *     576  AVX  YMM upper halves    (xstate_bv bit 2, 256 bytes)
 *     960  MPX  BNDREG0-3           (bit 3, 64 bytes)   1024 MPX BNDCSR (bit 4, 16 bytes)
 *     1088 AVX-512 opmask k0-7      (bit 5, 64 bytes)   1152 ZMM0-15 upper halves (bit 6, 512 bytes)
 *     1664 AVX-512 ZMM16-31         (bit 7, 1024 bytes) 2688 PKRU (bit 9, 4 bytes)
 *
 *   The whole area travels in cryopod_xsave and is what Cryopod restores; the CRIU fields are filled
 *   from it so that crit and CRIU see the FPU state too. Components CRIU has no field for (AMX...)
 *   exist only in cryopod_xsave.
 */

import { ImageError } from './errors';
import { U64 } from './proto';
import { u64FromBigInt } from './u64';

export const GPREG_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8', 'ax', 'cx', 'dx', 'si', 'di',
  'orig_ax', 'ip', 'cs', 'flags', 'sp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;
export const USER_REGS_BYTES = GPREG_NAMES.length * 8;
export const FXSAVE_BYTES = 512;
const XSAVE_HEADER_END = 576;
const USER_X86_REGS_MODE_NATIVE = 1;

export function gpregsFromBuffer(regs: Buffer, what = 'regs'): Record<string, U64 | number> {
  if (regs.length !== USER_REGS_BYTES) {
    throw new ImageError('EINVAL', undefined, `${what} is ${regs.length} bytes, expected struct user_regs_struct (${USER_REGS_BYTES} bytes)`);
  }
  const out: Record<string, U64 | number> = { mode: USER_X86_REGS_MODE_NATIVE };
  GPREG_NAMES.forEach((name, i) => {
    out[name] = u64FromBigInt(regs.readBigUInt64LE(i * 8), `${what}.${name}`);
  });
  return out;
}

export function bufferFromGpregs(gpregs: Record<string, string | number | undefined>, file: string): Buffer {
  const out = Buffer.alloc(USER_REGS_BYTES);
  GPREG_NAMES.forEach((name, i) => {
    const v = gpregs[name];
    if (v === undefined) throw new ImageError('EDECODE', file, `gpregs.${name} is missing`);
    out.writeBigUInt64LE(BigInt(v), i * 8);
  });
  return out;
}

function u32s(buf: Buffer, off: number, bytes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes; i += 4) out.push(buf.readUInt32LE(off + i));
  return out;
}

function u64s(buf: Buffer, off: number, bytes: number, what: string): U64[] {
  const out: U64[] = [];
  for (let i = 0; i < bytes; i += 8) out.push(u64FromBigInt(buf.readBigUInt64LE(off + i), what));
  return out;
}

/** One XSAVE component: its xstate_bv bit, offset and size in the standard format. */
interface Component {
  field: string;
  bit: number;
  offset: number;
  bytes: number;
  words: 32 | 64;
}

const COMPONENTS: readonly Component[] = [
  { field: 'ymmh_space', bit: 2, offset: 576, bytes: 256, words: 32 },
  { field: 'bndreg_state', bit: 3, offset: 960, bytes: 64, words: 64 },
  { field: 'bndcsr_state', bit: 4, offset: 1024, bytes: 16, words: 64 },
  { field: 'opmask_reg', bit: 5, offset: 1088, bytes: 64, words: 64 },
  { field: 'zmm_upper', bit: 6, offset: 1152, bytes: 512, words: 64 },
  { field: 'hi16_zmm', bit: 7, offset: 1664, bytes: 1024, words: 64 },
  { field: 'pkru', bit: 9, offset: 2688, bytes: 4, words: 32 },
];

/** user_x86_fpregs_entry for an XSAVE area (must hold at least the FXSAVE region). */
export function fpregsFromXsave(xsave: Buffer, what = 'xsave'): Record<string, unknown> {
  if (xsave.length < FXSAVE_BYTES) {
    throw new ImageError('EINVAL', undefined, `${what} is ${xsave.length} bytes, shorter than the ${FXSAVE_BYTES}-byte FXSAVE region`);
  }
  const fpregs: Record<string, unknown> = {
    cwd: xsave.readUInt16LE(0),
    swd: xsave.readUInt16LE(2),
    twd: xsave.readUInt16LE(4),
    fop: xsave.readUInt16LE(6),
    rip: u64FromBigInt(xsave.readBigUInt64LE(8), `${what}.rip`),
    rdp: u64FromBigInt(xsave.readBigUInt64LE(16), `${what}.rdp`),
    mxcsr: xsave.readUInt32LE(24),
    mxcsr_mask: xsave.readUInt32LE(28),
    st_space: u32s(xsave, 32, 128),
    xmm_space: u32s(xsave, 160, 256),
    padding: u32s(xsave, 416, 48),
    cryopod_xsave: xsave,
  };
  if (xsave.length >= XSAVE_HEADER_END) {
    const xstateBv = xsave.readBigUInt64LE(512);
    const ext: Record<string, unknown> = { xstate_bv: u64FromBigInt(xstateBv, `${what}.xstate_bv`) };
    for (const c of COMPONENTS) {
      const present = (xstateBv >> BigInt(c.bit)) & 1n;
      if (present === 0n || c.offset + c.bytes > xsave.length) continue;
      ext[c.field] = c.words === 32 ? u32s(xsave, c.offset, c.bytes) : u64s(xsave, c.offset, c.bytes, `${what}.${c.field}`);
    }
    fpregs.xsave = ext;
  }
  return fpregs;
}
