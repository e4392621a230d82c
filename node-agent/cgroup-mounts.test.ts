import { cgroupDir, parseMountinfo } from './cgroup-mounts';

const HYBRID = [
  '30 24 0:26 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:7 - cgroup2 cgroup2 rw',
  '35 24 0:31 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,freezer',
  '36 24 0:32 / /sys/fs/cgroup/memory rw,relatime shared:13 - cgroup cgroup rw,memory',
].join('\n');

test('finds the v2 mount and the v1 freezer on a hybrid host', () => {
  expect(parseMountinfo(HYBRID)).toEqual({ v2: { root: '/', mountPoint: '/sys/fs/cgroup/unified' }, freezerV1: { root: '/', mountPoint: '/sys/fs/cgroup/freezer' } });
});

test('pure v2 host: no v1 freezer', () => {
  expect(parseMountinfo('25 21 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate')).toEqual({ v2: { root: '/', mountPoint: '/sys/fs/cgroup' } });
});

test('cgroupDir maps a hierarchy path under the mount and refuses paths outside its root', () => {
  expect(cgroupDir({ root: '/', mountPoint: '/sys/fs/cgroup' }, '/kubepods/pod1/c')).toBe('/sys/fs/cgroup/kubepods/pod1/c');
  expect(cgroupDir({ root: '/kubepods', mountPoint: '/mnt/cg' }, '/kubepods/pod1')).toBe('/mnt/cg/pod1');
  expect(() => cgroupDir({ root: '/kubepods', mountPoint: '/mnt/cg' }, '/system.slice/x')).toThrow(/outside/);
  expect(() => cgroupDir({ root: '/', mountPoint: '/sys/fs/cgroup' }, '/../../etc')).not.toThrow(); // normalised to /etc under the mount
  expect(cgroupDir({ root: '/', mountPoint: '/sys/fs/cgroup' }, '/../../etc')).toBe('/sys/fs/cgroup/etc');
});
