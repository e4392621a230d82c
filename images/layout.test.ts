import { PageRun, Vma } from '../native/lib/types';
import { checkPageRuns, checkVmas } from './layout';
import { patternBytes } from './test/test-fixture';

const files = { mm: 'mm-1.img', pagemap: 'pagemap-1.img', pages: 'pages-1.img' };
const P = 4096;

function vma(start: number, end: number, kind: Vma['kind'] = 'anon'): Vma {
  return { start, end, pgoff: 0, prot: 3, flags: 0x22, kind, name: '', madv: 0 };
}

/** The rules, stated page by page: the oracle the fast two-pointer check must agree with. */
function oracle(vmas: Vma[], runs: PageRun[], bytes: number): boolean {
  const seen = new Set<number>();
  let prev = -1;
  let total = 0;
  for (const r of runs) {
    if (r.nrPages < 1 || r.vaddr % P !== 0 || r.vaddr <= prev) return false;
    const owner = vmas.find((v) => v.start <= r.vaddr && r.vaddr < v.end);
    for (let i = 0; i < r.nrPages; i++) {
      const page = r.vaddr + i * P;
      if (seen.has(page) || owner === undefined || page >= owner.end) return false;
      if (owner.kind !== 'anon' && owner.kind !== 'file-private') return false;
      seen.add(page);
      prev = page;
    }
    total += r.nrPages * P;
    if (total > bytes) return false;
  }
  return total === bytes;
}

describe('layout checks', () => {
  it('agree with a page-by-page oracle on random layouts', () => {
    const rnd = patternBytes(200_000, 5);
    let k = 0;
    const next = (n: number): number => rnd[k++ % rnd.length] % n;
    let accepted = 0;
    for (let trial = 0; trial < 2000; trial++) {
      const vmas = [vma(0x10 * P, 0x18 * P), vma(0x18 * P, 0x1c * P, next(4) === 0 ? 'vdso' : 'file-private'), vma(0x30 * P, 0x38 * P)];
      const runs: PageRun[] = [];
      let at = 0x0e + next(4);
      for (let n = next(5); n > 0; n--) {
        at += next(6) - 1;
        const r = { vaddr: at * P + (next(40) === 0 ? 512 : 0), nrPages: next(5) };
        runs.push(r);
        at += r.nrPages;
        if (next(3) === 0) at += 0x10;
      }
      const pages = runs.reduce((s, r) => s + r.nrPages, 0) + (next(6) === 0 ? next(3) - 1 : 0);
      const bytes = Math.max(0, pages) * P;
      const expected = oracle(vmas, runs, bytes);
      let ok = true;
      try {
        checkPageRuns(vmas, runs, bytes, files);
      } catch (err) {
        expect(err).toMatchObject({ code: 'EBOUNDS', file: 'pagemap-1.img' });
        ok = false;
      }
      expect({ trial, runs, bytes, ok }).toEqual({ trial, runs, bytes, ok: expected });
      if (ok) accepted++;
    }
    // The generator must exercise both outcomes, or the comparison proves little.
    expect(accepted).toBeGreaterThan(100);
    expect(accepted).toBeLessThan(1900);
  });

  it('refuses unaligned, empty, overlapping and unordered VMAs', () => {
    expect(() => checkVmas([vma(0x1000, 0x2800)], 'mm-1.img')).toThrow(/not page-aligned/);
    expect(() => checkVmas([vma(0x2000, 0x2000)], 'mm-1.img')).toThrow(/empty or inverted/);
    expect(() => checkVmas([vma(0x1000, 0x3000), vma(0x2000, 0x4000)], 'mm-1.img')).toThrow(/overlaps or precedes/);
    expect(() => checkVmas([vma(0x1000, 0x2000), vma(0x2000, 0x3000)], 'mm-1.img')).not.toThrow();
  });
});
