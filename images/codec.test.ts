import { frameImage, unframeImage } from './codec';
import { MAX_ENTRY_BYTES } from './limits';

describe('entry framing', () => {
  const entries = [Buffer.from([1, 2, 3]), Buffer.alloc(0), Buffer.from('hello')];

  it('frames magics and u32 LE lengths exactly as CRIU does, and splits them back', () => {
    const img = frameImage('FS', entries);
    expect(img.subarray(0, 8)).toEqual(Buffer.from([0x19, 0x43, 0x56, 0x54, 0x12, 0x39, 0x40, 0x51]));
    expect(img.readUInt32LE(8)).toBe(3);
    expect(img.length).toBe(8 + 3 * 4 + 8);
    expect(unframeImage('fs-1.img', 'FS', img).map((e) => Buffer.from(e))).toEqual(entries);
    expect(frameImage('INVENTORY', []).readUInt32LE(0)).toBe(0x55105940);
  });

  it('refuses short files, wrong magics, truncated entries and oversized lengths', () => {
    const img = frameImage('FS', entries);
    expect(() => unframeImage('f', 'FS', img.subarray(0, 5))).toThrow(expect.objectContaining({ code: 'ETRUNC', file: 'f' }));
    expect(() => unframeImage('f', 'MM', img)).toThrow(expect.objectContaining({ code: 'EMAGIC', message: expect.stringContaining('(a FS image)') }));
    expect(() => unframeImage('f', 'FS', img.subarray(0, img.length - 1))).toThrow(expect.objectContaining({ code: 'ETRUNC', message: expect.stringContaining('entry 2') }));
    const big = Buffer.from(img);
    big.writeUInt32LE(MAX_ENTRY_BYTES + 1, 8);
    expect(() => unframeImage('f', 'FS', big)).toThrow(expect.objectContaining({ code: 'ETOOBIG' }));
    const noise = Buffer.alloc(16, 0xab);
    expect(() => unframeImage('f', 'FS', noise)).toThrow(expect.objectContaining({ code: 'EMAGIC', message: expect.stringContaining('not a CRIU image') }));
  });
});
