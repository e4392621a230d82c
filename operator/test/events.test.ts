/**
 * The operator's Events against the real API server: the same event again (a reconcile retried, a
 * deletion seen twice before its finalizer is gone) is one Event whose count goes up, as client-go's
 * recorder aggregates; a different message is an Event of its own.
 */
import { EventRecorder } from '../events';
import { createNamespace, eventsFor, setup, type Env } from './test-fixture';

const NS = 'team-events';
let env: Env;

beforeAll(async () => {
  env = await setup();
  await createNamespace(env.admin, NS);
});
afterAll(() => env?.stop());

test('an event recorded again bumps the count of the first; another message makes its own', async () => {
  const logged: string[] = [];
  const events = new EventRecorder(env.admin, (m) => logged.push(m));
  const obj = { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name: 'twice', namespace: NS, uid: 'u-twice' } };
  await events.record(obj, 'Warning', 'ImagesNotDeleted', 'outside the root');
  await events.record(obj, 'Warning', 'ImagesNotDeleted', 'outside the root');
  await events.record(obj, 'Warning', 'ImagesNotDeleted', 'outside the root');
  await events.record(obj, 'Warning', 'ImagesNotDeleted', 'another reason');
  const recorded = await eventsFor(env.admin, NS, 'twice', 'ImagesNotDeleted');
  expect(recorded.map((e) => [e.message, e.count]).sort()).toEqual([['another reason', 1], ['outside the root', 3]]);
  expect(logged).toEqual([]);
});
