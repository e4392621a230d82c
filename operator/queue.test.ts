import { WorkQueue } from './queue';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  test('deduplicates a key that is waiting', async () => {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new WorkQueue(async (k) => {
      seen.push(k);
      if (k === 'block') await gate;
    }, { concurrency: 1 });
    q.add('block'); // occupies the only worker
    q.add('a');
    q.add('a');
    q.add('a');
    expect(q.depth).toBe(1);
    release();
    await tick(10);
    expect(seen).toEqual(['block', 'a']);
    await q.shutdown();
  });

  test('never runs one key twice at once, and reruns it once if it changed meanwhile', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue(async () => {
      running++;
      runs++;
      maxRunning = Math.max(maxRunning, running);
      await tick(20);
      running--;
    }, { concurrency: 8 });
    q.add('k');
    await tick(1);
    q.add('k');
    q.add('k');
    await tick(100);
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
    await q.shutdown();
  });

  test('retries with growing backoff, then forgets the failures', async () => {
    const times: number[] = [];
    const errors: number[] = [];
    const q = new WorkQueue(async () => {
      times.push(Date.now());
      if (times.length < 4) throw new Error('boom');
    }, { minBackoffMs: 20, onError: (_k, _e, ms) => errors.push(ms) });
    q.add('k');
    await tick(300);
    expect(times).toHaveLength(4);
    expect(errors).toEqual([20, 40, 80]);
    expect(times[3] - times[2]).toBeGreaterThanOrEqual(75);
    await q.shutdown();
  });

  test('requeueAfter looks again; the earliest request wins', async () => {
    let runs = 0;
    const q = new WorkQueue(async () => {
      runs++;
      return runs === 1 ? { requeueAfterMs: 30 } : undefined;
    });
    q.add('k');
    q.addAfter('k', 1000);
    await tick(80);
    expect(runs).toBe(2);
    await q.shutdown();
  });

  test('shutdown waits for reconciles in flight and drops planned ones', async () => {
    let finished = false;
    let runs = 0;
    const q = new WorkQueue(async () => {
      runs++;
      await tick(30);
      finished = true;
      return { requeueAfterMs: 1 };
    });
    q.add('k');
    await tick(1);
    await q.shutdown();
    expect(finished).toBe(true);
    await tick(20);
    expect(runs).toBe(1);
  });
});
