import { DEFAULTS, parseConfig } from './config';

describe('parseConfig', () => {
  test('defaults', () => {
    expect(parseConfig([], {})).toEqual(DEFAULTS);
  });
  test('flags win over the environment', () => {
    const cfg = parseConfig(['--keep-last=2', '--agent-claim-timeout', '3', '--namespace=team-a'], {
      CRYOPOD_KEEP_LAST: '5',
      CRYOPOD_STORAGE_ROOT: '/srv/images',
      KUBECONFIG: '/k',
    });
    expect(cfg).toMatchObject({ keepLast: 2, agentClaimTimeoutSeconds: 3, namespace: 'team-a', storageRoot: '/srv/images', kubeconfig: '/k' });
  });
  test.each([
    [['--keep-last=-1'], /--keep-last: "-1" is not a non-negative integer/],
    [['--keep-last=two'], /not a non-negative integer/],
    [['--storage-root=images'], /not an absolute path/],
    [['--agent-claim-timeout=0'], /more than 0/],
    [['--bogus=1'], /unknown argument --bogus=1/],
    [['--namespace'], /--namespace needs a value/],
  ])('%j is refused', (argv, message) => {
    expect(() => parseConfig(argv, {})).toThrow(message);
  });
});
