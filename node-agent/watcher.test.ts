/** The list/watch loop re-lists after any watch error (client-node's informer would stop on a non-410). */
import { AgentApi, WatchEventType } from './kube';
import { ListWatcher } from './watcher';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('lists, watches, and after a watch error or a failed list lists again and keeps feeding keys', async () => {
  let lists = 0;
  const watches: Array<{ onEvent: (t: WatchEventType, o: unknown) => void; onDone: (e: unknown) => void }> = [];
  const api = {
    async listCustom() {
      lists++;
      if (lists === 2) throw new Error('apiserver unavailable');
      return { items: [{ metadata: { namespace: 'ns', name: `from-list-${lists}` } }], resourceVersion: String(lists) };
    },
    async watchCustom(_p: string, _s: string, _rv: string, onEvent: (t: WatchEventType, o: unknown) => void, onDone: (e: unknown) => void) {
      watches.push({ onEvent, onDone });
      return { abort: () => undefined };
    },
  } as unknown as AgentApi;
  const keys: string[] = [];
  const w = new ListWatcher(api, { plural: 'checkpoints', labelSelector: 'x=y', onKey: (k) => keys.push(k), log: () => undefined });
  w.start();
  try {
    await sleep(20);
    expect(w.synced).toBe(true);
    watches[0].onEvent('MODIFIED', { metadata: { namespace: 'ns', name: 'watched' } });
    watches[0].onEvent('BOOKMARK', { metadata: { resourceVersion: '5' } });
    watches[0].onDone(new Error('500 internal error')); // a non-410 error: an informer would stop here
    await sleep(800); // list 2 fails, backoff 250 ms, list 3 succeeds
    expect(lists).toBe(3);
    expect(watches).toHaveLength(2);
    watches[1].onEvent('ERROR', { code: 410, message: 'too old' }); // routine: re-listed at once
    await sleep(50);
    expect(lists).toBe(4);
    expect(keys).toEqual(['ns/from-list-1', 'ns/watched', 'ns/from-list-3', 'ns/from-list-4']);
  } finally {
    await w.stop();
  }
});
