import { parseConfig } from './config';

test('flags win over the environment; defaults fill the rest', () => {
  const c = parseConfig(['--node-name=n1', '--port', '0'], { NODE_NAME: 'ignored', POD_NAME: 'agent-x', CRYOPOD_STORAGE_ROOT: '/srv/img' });
  expect(c).toMatchObject({ nodeName: 'n1', podName: 'agent-x', port: 0, storageRoot: '/srv/img', stateDir: '/var/lib/cryopod/agent', freezeMode: 'native', concurrency: 1 });
});

test('bad settings fail with a message naming the flag', () => {
  expect(() => parseConfig([], {})).toThrow(/--node-name \(or NODE_NAME\)/);
  expect(() => parseConfig(['--node-name', 'Bad_Name'], {})).toThrow(/--node-name/);
  expect(() => parseConfig(['--node-name', 'n', '--storage-root', 'rel'], {})).toThrow(/--storage-root must be an absolute path/);
  expect(() => parseConfig(['--node-name', 'n', '--freeze-mode', 'x'], {})).toThrow(/--freeze-mode/);
  expect(() => parseConfig(['--node-name', 'n', '--nope', '1'], {})).toThrow(/unknown flag --nope/);
});
