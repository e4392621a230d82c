import { WorkQueue } from './queue';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a key queued many times runs once; one added while running runs once more afterwards', async () => {
  const runs: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const q = new WorkQueue(async (k) => {
    runs.push(k);
    if (runs.length === 1) await gate;
  });
  q.add('a');
  await sleep(5);
  q.add('a');
  q.add('a');
  q.add('b');
  q.add('b');
  expect(runs).toEqual(['a']); // one at a time (concurrency 1)
  release();
  await sleep(20);
  expect(runs.sort()).toEqual(['a', 'a', 'b']);
  await q.stop();
});

test('a failing key is retried with growing backoff and stops retrying after success', async () => {
  const times: number[] = [];
  const errors: number[] = [];
  const q = new WorkQueue(
    async () => {
      times.push(Date.now());
      if (times.length < 3) throw new Error('transient');
    },
    { baseDelayMs: 20, onError: (_k, _e, ms) => errors.push(ms) },
  );
  q.add('k');
  await sleep(200);
  expect(times).toHaveLength(3);
  expect(errors).toEqual([20, 40]);
  expect(times[2] - times[1]).toBeGreaterThanOrEqual(35);
  await q.stop();
});

test('stop() waits for the handler in flight and takes no more work', async () => {
  let finished = false;
  const q = new WorkQueue(async () => {
    await sleep(50);
    finished = true;
  });
  q.add('x');
  await sleep(5);
  await q.stop();
  expect(finished).toBe(true);
  q.add('y');
  expect(q.size).toBe(0);
});
