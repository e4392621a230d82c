import { patternBytes } from './test/test-fixture';
import { bufferFromGpregs, fpregsFromXsave, gpregsFromBuffer, GPREG_NAMES } from './x86';

const toBig = (v: unknown): bigint => {
  const { low, high } = v as { low: number; high: number };
  return (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
};

describe('x86 register views', () => {
  it('maps user_regs_struct to CRIU gpregs by position and back, bit for bit', () => {
    const regs = patternBytes(216, 3);
    const g = gpregsFromBuffer(regs);
    expect(toBig(g.ip)).toBe(regs.readBigUInt64LE(16 * 8));
    expect(toBig(g.gs)).toBe(regs.readBigUInt64LE(26 * 8));
    expect(g.mode).toBe(1);
    const asStrings = Object.fromEntries(GPREG_NAMES.map((n) => [n, toBig(g[n]).toString()]));
    expect(bufferFromGpregs(asStrings, 'core-1.img')).toEqual(regs);
  });

  it('fills the CRIU FPU fields from the XSAVE area and keeps the raw area', () => {
    const x = patternBytes(2688, 4);
    x.writeUInt32LE(0x1f80, 24);
    x.writeBigUInt64LE(0x7n, 512); // x87, SSE, AVX only
    const f = fpregsFromXsave(x) as Record<string, any>;
    expect(f.mxcsr).toBe(0x1f80);
    expect(f.cwd).toBe(x.readUInt16LE(0));
    expect(f.st_space).toHaveLength(32);
    expect(f.xmm_space[0]).toBe(x.readUInt32LE(160));
    expect(f.xsave.ymmh_space[63]).toBe(x.readUInt32LE(576 + 252));
    expect(f.xsave).not.toHaveProperty('zmm_upper');
    expect(f.cryopod_xsave).toBe(x);
    expect(() => fpregsFromXsave(Buffer.alloc(100))).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
