import { checkPodUid, matchContainerPath, parseContainerID, parseProcCgroup } from './cgroup-path';

const UID = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
const ID = 'a'.repeat(60) + '0c1f';

describe('parseProcCgroup', () => {
  test('v1 controllers, named hierarchies and the v2 line', () => {
    expect(parseProcCgroup('6:freezer:/kubepods/x\n9:name=systemd:/\n0::/a/b\n')).toEqual([
      { hierarchy: 6, controllers: ['freezer'], path: '/kubepods/x' },
      { hierarchy: 9, controllers: ['name=systemd'], path: '/' },
      { hierarchy: 0, controllers: [], path: '/a/b' },
    ]);
  });
});

describe('matchContainerPath', () => {
  test('cgroupfs driver: pod<uid>/<id>', () => {
    expect(matchContainerPath(`/kubepods/besteffort/pod${UID}/${ID}`, UID, ID)).toEqual({ podPath: `/kubepods/besteffort/pod${UID}`, containerPath: `/kubepods/besteffort/pod${UID}/${ID}` });
  });
  test('systemd driver: underscores in the pod slice, cri-containerd-<id>.scope, sub-cgroups below it', () => {
    const u = UID.replace(/-/g, '_');
    const pod = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${u}.slice`;
    expect(matchContainerPath(`${pod}/cri-containerd-${ID}.scope/init`, UID, ID)).toEqual({ podPath: pod, containerPath: `${pod}/cri-containerd-${ID}.scope` });
    expect(matchContainerPath(`/kubepods.slice/kubepods-pod${u}.slice/crio-${ID}.scope`, UID, ID)?.containerPath).toBe(`/kubepods.slice/kubepods-pod${u}.slice/crio-${ID}.scope`);
  });
  test('no match: another pod, another container, the pod cgroup itself, the container ID above the pod', () => {
    expect(matchContainerPath(`/kubepods/pod${UID.replace('1b4e', '1b4f')}/${ID}`, UID, ID)).toBeUndefined();
    expect(matchContainerPath(`/kubepods/pod${UID}/${'b'.repeat(64)}`, UID, ID)).toBeUndefined();
    expect(matchContainerPath(`/kubepods/pod${UID}`, UID, ID)).toBeUndefined();
    expect(matchContainerPath(`/${ID}/pod${UID}`, UID, ID)).toBeUndefined();
    expect(matchContainerPath(`/kubepods/xpod${UID}/${ID}`, UID, ID)).toBeUndefined();
    expect(matchContainerPath(`/kubepods/pod${UID}/cri-containerd-${ID}x.scope`, UID, ID)).toBeUndefined();
  });
});

describe('IDs', () => {
  test('container IDs: runtime://hex only', () => {
    expect(parseContainerID(`containerd://${ID}`)).toEqual({ runtime: 'containerd', id: ID });
    expect(() => parseContainerID(`containerd://../../etc`)).toThrow(/not <runtime>:\/\/<hex id>/);
    expect(() => parseContainerID(ID)).toThrow();
  });
  test('pod UIDs', () => {
    expect(checkPodUid(UID)).toBe(UID);
    expect(() => checkPodUid('../x')).toThrow(/not a UUID/);
  });
});
