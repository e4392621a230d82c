/**
 * fast-check arbitraries for the reader fuzz tests: damage to a valid image file, of the kinds storage,
 * a broken upload or an attacker make. Each damage is small, so that most mutated files still get past
 * the magics and the framing and reach the protobuf decoding and the value checks behind them.
 */
import fc from 'fast-check';

export type Damage =
  | { op: 'flip'; at: number; mask: number }
  | { op: 'set'; at: number; bytes: Uint8Array }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'repeat'; at: number; len: number };

/** Positions are fractions of the file's length, so one arbitrary fits files of every size. */
const at = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
// Protobuf's interesting bytes: varint continuations, wire types, the largest values.
const hostileByte = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xff, 0x08, 0x10, 0x12, 0x1a));
const bytes = fc.array(hostileByte, { minLength: 1, maxLength: 24 }).map((a) => Uint8Array.from(a));

export const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at, mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ op: fc.constant('set' as const), at, bytes }),
  fc.record({ op: fc.constant('truncate' as const), at }),
  fc.record({ op: fc.constant('insert' as const), at, bytes }),
  fc.record({ op: fc.constant('repeat' as const), at, len: fc.integer({ min: 1, max: 64 }) }),
) as fc.Arbitrary<Damage>;

export const damages = fc.array(damage, { minLength: 1, maxLength: 4 });

export function applyDamage(buf: Uint8Array, list: readonly Damage[]): Buffer {
  let b = Buffer.from(buf);
  for (const d of list) {
    const i = Math.floor(d.at * b.length);
    switch (d.op) {
      case 'flip':
        if (b.length > 0) b[i] ^= d.mask;
        break;
      case 'set':
        b = Buffer.concat([b.subarray(0, i), Buffer.from(d.bytes), b.subarray(Math.min(b.length, i + d.bytes.length))]);
        break;
      case 'truncate':
        b = b.subarray(0, i);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, i), Buffer.from(d.bytes), b.subarray(i)]);
        break;
      case 'repeat':
        b = Buffer.concat([b.subarray(0, i + d.len), b.subarray(i)]);
        break;
    }
  }
  return b;
}

/** How many runs each property makes: CRYOPOD_FUZZ_RUNS (npm run fuzz), else the suite's bounded count. */
export function fuzzRuns(suiteDefault: number): number {
  const n = Number(process.env.CRYOPOD_FUZZ_RUNS);
  return Number.isSafeInteger(n) && n > 0 ? n : suiteDefault;
}
