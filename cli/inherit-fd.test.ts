/** `--inherit-fd N:SOURCE` parsing (pure): an fd of ours, a path, or a usage error naming the spec. */
import { parseInheritFd } from './inherit-fd';

test('N:FD is an fd of the cryopod process, N:PATH a path', () => {
  expect(parseInheritFd('1:3')).toEqual({ fd: 1, restorerFd: 3 });
  expect(parseInheritFd('0:/tmp/in.fifo')).toEqual({ fd: 0, path: '/tmp/in.fifo' });
  expect(parseInheritFd('7:rel/path:with:colons')).toEqual({ fd: 7, path: 'rel/path:with:colons' });
});

test.each(['1', ':3', 'x:3', '1:', '-1:3'])('%s is a usage error', (spec) => {
  expect(() => parseInheritFd(spec)).toThrow(expect.objectContaining({ code: 'EUSAGE', message: expect.stringContaining(JSON.stringify(spec)) }));
});
