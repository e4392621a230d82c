import { formatSummary, summarize } from './index';
import { makeTask, makeThreadedTask } from './test/test-fixture';

describe('summarize', () => {
  it('gives one row per VMA with prot, kind, name and the pages dumped for it, and totals', () => {
    const s = summarize(makeTask());
    expect(s.rows.map((r) => [r.prot, r.kind, r.name, r.pages, r.bytes])).toEqual([
      ['r--p', 'file-private', '/usr/local/bin/victim', 0, 0],
      ['r-xp', 'file-private', '/usr/local/bin/victim', 0, 0],
      ['rw-p', 'file-private', '/usr/local/bin/victim', 1, 4096],
      ['rw-p', 'anon', '[heap]', 3, 12288],
      ['rw-s', 'file-shared', '/dev/shm/victim-data', 0, 0],
      ['rw-p', 'anon', '', 4, 16384],
      ['r--p', 'vvar', '[vvar]', 0, 0],
      ['r-xp', 'vdso', '[vdso]', 0, 0],
      ['rw-p', 'anon', '[stack]', 3, 12288],
    ]);
    expect(s.rows[3]).toMatchObject({ start: 0x5555_5555_a000, end: 0x5555_5557_b000, size: 0x21000 });
    expect(s.totals).toEqual({ vmas: 9, mappedBytes: s.rows.reduce((n, r) => n + r.size, 0), pages: 11, bytes: 45056 });
    expect(s.threads).toBe(1);
    const text = formatSummary(s);
    expect(text.split('\n').slice(0, 2)).toEqual(['pid 4242 (victim)', 'threads 1']);
    expect(text).toContain('9 VMAs');
    expect(text.split('\n')).toHaveLength(3 + 9 + 1);
  });

  it('counts every thread, the main one included', () => {
    const s = summarize(makeThreadedTask());
    expect(s.threads).toBe(4);
    expect(formatSummary(s).split('\n')[1]).toBe('threads 4');
    // A summary assembled without the count (as cli/inspect.ts does) still formats, without the line.
    expect(formatSummary({ ...s, threads: undefined }).split('\n')).toHaveLength(2 + 9 + 1);
  });
});
