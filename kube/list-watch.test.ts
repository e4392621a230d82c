/**
 * The list-watch loop over a fake WatchSource (pure logic; operator/test/watch.test.ts runs it against a
 * real API server). Every wait is on something the fake records (a list, a watch), with a deadline.
 */
import { waitFor } from '../testenv/wait';
import { ListWatch, WatchError, type KubeObject, type ListWatchEventType, type WatchEventType, type WatchSource } from './list-watch';

interface OpenWatch {
  resourceVersion: string;
  timeoutSeconds: number;
  emit(type: WatchEventType, obj: KubeObject): void;
  end(err?: unknown): void;
  signal: AbortSignal;
}

/** A source whose lists follow a script (an Error in it is a failed list) and whose watches the test drives. */
function fakeSource(script: Array<Error | string>): WatchSource & { lists: number[]; watches: OpenWatch[] } {
  const lists: number[] = [];
  const watches: OpenWatch[] = [];
  return {
    name: 'checkpoints',
    lists,
    watches,
    async list() {
      lists.push(Date.now());
      const step = script.shift() ?? `list-${lists.length}`;
      if (step instanceof Error) throw step;
      return { items: [{ metadata: { namespace: 'ns', name: step } }], resourceVersion: String(lists.length) };
    },
    watch: (resourceVersion, timeoutSeconds, onEvent, signal) =>
      new Promise<void>((resolve, reject) => {
        const end = (err?: unknown) => (err ? reject(err) : resolve());
        signal.addEventListener('abort', () => resolve(), { once: true });
        watches.push({ resourceVersion, timeoutSeconds, emit: onEvent, end, signal });
      }),
  };
}

function start(source: WatchSource, opts: { resyncSeconds?: number } = {}) {
  const events: Array<[ListWatchEventType, string]> = [];
  const logs: string[] = [];
  const w = new ListWatch({ source, onEvent: (t, o) => events.push([t, o.metadata!.name!]), log: (m) => logs.push(m), minBackoffMs: 50, maxBackoffMs: 80, ...opts });
  w.start();
  return { w, events, logs };
}

test('lists, then watches from the list\'s resourceVersion; every listed object is reported as SYNC', async () => {
  const src = fakeSource(['a']);
  const { w, events } = start(src);
  try {
    await waitFor('the first watch', () => src.watches.length === 1);
    expect(w.synced).toBe(true);
    expect(w.lastSync).toBeGreaterThan(0);
    expect(src.watches[0].resourceVersion).toBe('1');
    expect(src.watches[0].timeoutSeconds).toBe(300);
    src.watches[0].emit('MODIFIED', { metadata: { namespace: 'ns', name: 'b' } });
    src.watches[0].emit('DELETED', { metadata: { namespace: 'ns', name: 'a' } });
    expect(events).toEqual([
      ['SYNC', 'a'],
      ['MODIFIED', 'b'],
      ['DELETED', 'a'],
    ]);
  } finally {
    await w.stop();
  }
});

test('a watch error other than 410, and a failed list, are followed by a backoff and a fresh list', async () => {
  const src = fakeSource(['a', new Error('apiserver unavailable'), 'c']);
  const { w, events, logs } = start(src);
  try {
    await waitFor('the first watch', () => src.watches.length === 1);
    src.watches[0].end(Object.assign(new Error('500 internal error'), { code: 500 })); // an informer would stop here
    await waitFor('the second watch', () => src.watches.length === 2, 5000);
    expect(src.lists).toHaveLength(3);
    // Backoff 50 ms after the watch error, then 100 ms capped at 80 after the failed list.
    expect(src.lists[1] - src.lists[0]).toBeGreaterThanOrEqual(45);
    expect(src.lists[2] - src.lists[1]).toBeGreaterThanOrEqual(75);
    expect(logs[0]).toMatch(/^watch checkpoints: 500 internal error; relisting in 50 ms$/);
    expect(logs[1]).toMatch(/^watch checkpoints: apiserver unavailable; relisting in 80 ms$/);
    expect(events).toEqual([
      ['SYNC', 'a'],
      ['SYNC', 'c'],
    ]);
  } finally {
    await w.stop();
  }
});

test('410 Gone relists at once, and a good list resets the backoff', async () => {
  const src = fakeSource(['a', 'b', new Error('down'), 'c']);
  const { w, logs } = start(src);
  try {
    await waitFor('the first watch', () => src.watches.length === 1);
    src.watches[0].end(new WatchError(410, 'too old'));
    await waitFor('the second watch', () => src.watches.length === 2);
    expect(src.lists[1] - src.lists[0]).toBeLessThan(45); // no backoff (it would be at least 50 ms)
    expect(logs[0]).toMatch(/410: too old; relisting now$/);
    src.watches[1].end(new Error('reset'));
    await waitFor('the third watch', () => src.watches.length === 3, 5000);
    expect(logs.slice(1)).toEqual(['watch checkpoints: reset; relisting in 50 ms', 'watch checkpoints: down; relisting in 80 ms']);
  } finally {
    await w.stop();
  }
});

test('a watch the server ends cleanly, or that outlives resyncSeconds, is followed by a list at once', async () => {
  const src = fakeSource([]);
  const { w, logs } = start(src, { resyncSeconds: 0.2 });
  try {
    await waitFor('the first watch', () => src.watches.length === 1);
    src.watches[0].end(); // the server's timeoutSeconds
    await waitFor('the second watch', () => src.watches.length === 2);
    // Nobody ends the second one: the loop's own deadline (0.2 s) aborts it and lists again.
    await waitFor('the third watch', () => src.watches.length === 3, 5000);
    expect(src.watches[1].signal.aborted).toBe(true);
    expect(src.lists[2] - src.lists[1]).toBeGreaterThanOrEqual(190);
    expect(logs).toEqual([]);
  } finally {
    await w.stop();
  }
});

test('stop() ends the watch in flight and the loop', async () => {
  const src = fakeSource([]);
  const { w } = start(src);
  await waitFor('the first watch', () => src.watches.length === 1);
  await w.stop();
  expect(src.watches[0].signal.aborted).toBe(true);
  expect(src.lists).toHaveLength(1);
});

test('stop() while a list is in flight: no watch is started after it', async () => {
  const src = fakeSource([]);
  let release!: () => void;
  const listed = new Promise<void>((r) => (release = r));
  const list = src.list.bind(src);
  src.list = async () => {
    await listed;
    return list();
  };
  const { w } = start(src);
  const stopped = w.stop();
  release();
  await stopped; // would wait for the watch's resyncSeconds (300 s) if one were started
  expect(src.lists).toHaveLength(1);
  expect(src.watches).toHaveLength(0);
});
