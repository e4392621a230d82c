/** The agent's WatchSource over AgentApi: ERROR events become WatchErrors (410 is Gone), bookmarks are dropped. */
import { isGone, type KubeObject, type WatchEventType } from '../kube';
import type { AgentApi, WatchEventType as RawType } from './kube';
import { customResourceSource } from './watch-source';

function fakeApi() {
  const calls: Array<{ plural: string; selector: string; rv: string; timeoutSeconds: number; onEvent: (t: RawType, o: unknown) => void; onDone: (e: unknown) => void; aborted: boolean }> = [];
  const api = {
    async listCustom(plural: string, selector: string) {
      return { items: [{ metadata: { name: `${plural}:${selector}` } }], resourceVersion: '7' };
    },
    async watchCustom(plural: string, selector: string, rv: string, timeoutSeconds: number, onEvent: (t: RawType, o: unknown) => void, onDone: (e: unknown) => void) {
      const call = { plural, selector, rv, timeoutSeconds, onEvent, onDone, aborted: false };
      calls.push(call);
      return { abort: () => (call.aborted = true) };
    },
  } as unknown as AgentApi;
  return { api, calls };
}

test('lists and watches the plural with the selector; passes events on, drops bookmarks; ends when the server ends', async () => {
  const { api, calls } = fakeApi();
  const src = customResourceSource(api, 'checkpoints', 'cryopod.io/node=n1');
  expect(await src.list()).toEqual({ items: [{ metadata: { name: 'checkpoints:cryopod.io/node=n1' } }], resourceVersion: '7' });
  const seen: Array<[WatchEventType, KubeObject]> = [];
  const done = src.watch('7', 60, (t, o) => seen.push([t, o]), new AbortController().signal);
  await Promise.resolve();
  expect(calls).toHaveLength(1);
  expect(calls[0]).toMatchObject({ plural: 'checkpoints', selector: 'cryopod.io/node=n1', rv: '7', timeoutSeconds: 60 });
  calls[0].onEvent('ADDED', { metadata: { name: 'a' } });
  calls[0].onEvent('BOOKMARK', { metadata: { resourceVersion: '9' } });
  calls[0].onDone(null);
  await done;
  expect(seen).toEqual([['ADDED', { metadata: { name: 'a' } }]]);
});

test('an ERROR event rejects with its code (410: Gone) and aborts the watch', async () => {
  const { api, calls } = fakeApi();
  const src = customResourceSource(api, 'restores', 's');
  const done = src.watch('1', 60, () => undefined, new AbortController().signal);
  await Promise.resolve();
  await Promise.resolve();
  calls[0].onEvent('ERROR', { code: 410, message: 'too old' });
  const err = await done.catch((e: unknown) => e);
  expect(isGone(err)).toBe(true);
  expect((err as Error).message).toBe('watch error 410: too old');
  expect(calls[0].aborted).toBe(true);
});

test('a failure of the watch rejects; an abort of the signal resolves and aborts the watch', async () => {
  const { api, calls } = fakeApi();
  const src = customResourceSource(api, 'restores', 's');
  const failed = src.watch('1', 60, () => undefined, new AbortController().signal);
  await Promise.resolve();
  calls[0].onDone(new Error('socket hang up'));
  await expect(failed).rejects.toThrow('socket hang up');

  const ctl = new AbortController();
  const aborted = src.watch('1', 60, () => undefined, ctl.signal);
  for (let i = 0; i < 5 && calls.length < 2; i++) await Promise.resolve();
  ctl.abort();
  await aborted;
  expect(calls[1].aborted).toBe(true);
});
