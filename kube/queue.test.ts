/**
 * The work queue's promises, each shown without a fixed sleep: runs are held on gates the test opens, and
 * the end of a test is "the queue is idle" (q.size === 0) after a success: no key waiting, none running
 * and no retry planned (size does not count retries, so a test that fails on purpose waits for its success
 * first); nothing can run after that, so a run count read then is final.
 */
import { holdsFor, waitFor } from '../testenv/wait';
import { WorkQueue, objectKey, splitKey } from './queue';

function gate(): { open(): void; opened: Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

const idle = (q: WorkQueue) => waitFor('the queue to be idle', () => q.size === 0, 5000, 2);

describe('WorkQueue', () => {
  test('deduplicates a key that is waiting', async () => {
    const seen: string[] = [];
    const release = gate();
    const q = new WorkQueue(async (k) => {
      seen.push(k);
      if (k === 'block') await release.opened;
    });
    q.add('block'); // occupies the only worker (concurrency 1 by default)
    q.add('a');
    q.add('a');
    q.add('a');
    expect(q.depth).toBe(1);
    expect(seen).toEqual(['block']); // one at a time
    release.open();
    await idle(q);
    expect(seen).toEqual(['block', 'a']);
    await q.shutdown();
  });

  test('never runs one key twice at once, and reruns it once if it changed meanwhile', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const started = gate();
    const release = gate();
    const q = new WorkQueue(
      async () => {
        running++;
        runs++;
        maxRunning = Math.max(maxRunning, running);
        started.open();
        if (runs === 1) await release.opened;
        running--;
      },
      { concurrency: 8 },
    );
    q.add('k');
    await started.opened;
    q.add('k'); // while it runs: marked dirty, not started beside it
    q.add('k');
    expect(runs).toBe(1);
    release.open();
    await idle(q);
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
    await q.shutdown();
  });

  test('keys other than the one waiting run once each, in the order they came', async () => {
    const runs: string[] = [];
    const release = gate();
    const q = new WorkQueue(async (k) => {
      runs.push(k);
      if (runs.length === 1) await release.opened;
    });
    q.add('a');
    q.add('a'); // a is running: it runs once more afterwards
    q.add('b');
    q.add('b');
    expect(runs).toEqual(['a']);
    release.open();
    await idle(q);
    expect(runs).toEqual(['a', 'b', 'a']);
    await q.shutdown();
  });

  test('retries with growing backoff, then forgets the failures', async () => {
    const times: number[] = [];
    const errors: number[] = [];
    const q = new WorkQueue(
      async () => {
        times.push(Date.now());
        if (times.length < 4) throw new Error('boom');
      },
      { minBackoffMs: 20, onError: (_k, _e, ms) => errors.push(ms) },
    );
    q.add('k');
    await waitFor('the fourth run', () => times.length === 4, 5000, 2);
    await idle(q); // succeeded: no retry is planned any more
    expect(times).toHaveLength(4);
    expect(errors).toEqual([20, 40, 80]);
    expect(times[2] - times[1]).toBeGreaterThanOrEqual(35);
    expect(times[3] - times[2]).toBeGreaterThanOrEqual(75);
    await q.shutdown();
  });

  test('backoff restarts from the minimum after a success, and stops at the maximum', async () => {
    const errors: number[] = [];
    let fail = 0;
    let successes = 0;
    const q = new WorkQueue(
      async () => {
        if (fail-- > 0) throw new Error('boom');
        successes++;
      },
      { minBackoffMs: 1, maxBackoffMs: 4, onError: (_k, _e, ms) => errors.push(ms) },
    );
    fail = 4;
    q.add('k');
    await waitFor('four failures, then a success', () => successes === 1, 5000, 2);
    fail = 1;
    q.add('k');
    await waitFor('one more failure, then a success', () => successes === 2, 5000, 2);
    expect(errors).toEqual([1, 2, 4, 4, 1]);
    await q.shutdown();
  });

  test('requeueAfter looks again; the earliest request wins', async () => {
    const times: number[] = [];
    const q = new WorkQueue(async () => {
      times.push(Date.now());
      return times.length === 1 ? { requeueAfterMs: 30 } : undefined;
    });
    q.add('k');
    q.addAfter('k', 10000); // later than the reconcile's own 30 ms: replaced by it
    await waitFor('the second run', () => times.length === 2, 5000, 2);
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(25);
    expect(times[1] - times[0]).toBeLessThan(5000); // not the 10 s one
    await q.shutdown();
  });

  test('shutdown waits for reconciles in flight, drops planned ones and takes no more work', async () => {
    let finished = false;
    let runs = 0;
    const started = gate();
    const release = gate();
    const q = new WorkQueue(async () => {
      runs++;
      started.open();
      await release.opened;
      finished = true;
      return { requeueAfterMs: 1 };
    });
    q.add('k');
    await started.opened;
    const stopping = q.shutdown();
    release.open();
    await stopping;
    expect(finished).toBe(true);
    q.add('y');
    expect(q.size).toBe(0);
    // The requeue the run asked for would fire 1 ms after it: 100 ms is a hundred times that.
    await holdsFor('one run only', () => runs === 1, 100, 5);
  });
});

test('keys: namespace/name of an object, and back', () => {
  expect(objectKey({ metadata: { namespace: 'team-a', name: 'ck.1' } })).toBe('team-a/ck.1');
  expect(objectKey({ metadata: { name: 'cluster-scoped' } })).toBeUndefined();
  expect(objectKey({})).toBeUndefined();
  expect(splitKey('team-a/ck.1')).toEqual(['team-a', 'ck.1']);
});
