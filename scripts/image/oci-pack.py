#!/usr/bin/env python3
"""Packs directories into one container image archive, without a registry or a container engine.

    oci-pack.py --out IMG.tar --name docker.io/cryopod/cryopod:0.1.0 \
        [--entrypoint '["node"]'] [--cmd '["app.js"]'] [--workdir /opt/cryopod] [--env K=V]... \
        LAYER_DIR [LAYER_DIR ...]

Each LAYER_DIR becomes one gzip layer, in order (the first is the bottom). The archive is an OCI image
layout (oci-layout, index.json, blobs/sha256/...) that also carries Docker's manifest.json, so one file
loads with `ctr images import`, `docker load`, `podman load` and `skopeo copy oci-archive:...`:

    IMG.tar
    ├── oci-layout                 {"imageLayoutVersion": "1.0.0"}
    ├── index.json                 → manifest, annotated with the full name (containerd) and the tag (OCI)
    ├── manifest.json              Docker's: [{Config, RepoTags, Layers}] naming the same blobs
    └── blobs/sha256/
        ├── <manifest>             application/vnd.oci.image.manifest.v1+json
        ├── <config>               architecture, os, rootfs.diff_ids (sha256 of each uncompressed layer)
        └── <layer>...             tar+gzip of one LAYER_DIR

Reproducible: entries sorted, owned by root, mtime 0, gzip without a timestamp. So the same directory
gives the same layer digest in every image (a runtime stores a shared base layer once).
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile

EPOCH = 0


def layer_tar(root: str, raw) -> None:
    """Writes ROOT's tree as an uncompressed tar into the file object RAW (paths relative, no leading /)."""
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            if rel_dir != ".":
                add(tar, dirpath, rel_dir)
            # os.walk lists a symlink to a directory among dirnames without descending into it: it is an
            # entry of this directory like a file.
            links = [n for n in dirnames if os.path.islink(os.path.join(dirpath, n))]
            dirnames[:] = sorted(n for n in dirnames if n not in links)
            for name in sorted(filenames + links):
                add(tar, os.path.join(dirpath, name), os.path.normpath(os.path.join(rel_dir, name)))


def add(tar: tarfile.TarFile, path: str, arcname: str) -> None:
    info = tar.gettarinfo(path, arcname)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = EPOCH
    if info.isfile():
        with open(path, "rb") as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)


class Blobs:
    """blobs/sha256/ of the archive being built: bytes in, a descriptor out."""

    def __init__(self, tar: tarfile.TarFile):
        self.tar = tar

    def put(self, media_type: str, data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        info = tarfile.TarInfo(f"blobs/sha256/{digest}")
        info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
        self.tar.addfile(info, io.BytesIO(data))
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def put_file(self, media_type: str, path: str, digest: str, size: int) -> dict:
        info = tarfile.TarInfo(f"blobs/sha256/{digest}")
        info.size, info.mtime, info.mode = size, EPOCH, 0o644
        with open(path, "rb") as f:
            self.tar.addfile(info, f)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": size}


def gzip_layer(root: str, work: str):
    """ROOT as a gzip layer file in WORK: (path, sha256 of the gzip, its size, sha256 of the plain tar)."""
    plain_path = os.path.join(work, "layer.tar")
    with open(plain_path, "wb") as raw:
        layer_tar(root, raw)
    plain_digest = hashlib.sha256()
    gz_path = os.path.join(work, "layer.tar.gz")
    with open(plain_path, "rb") as src, open(gz_path, "wb") as dst:
        with gzip.GzipFile(filename="", mode="wb", fileobj=dst, mtime=EPOCH, compresslevel=6) as gz:
            while chunk := src.read(1 << 20):
                plain_digest.update(chunk)
                gz.write(chunk)
    os.unlink(plain_path)
    gz_digest = hashlib.sha256()
    with open(gz_path, "rb") as f:
        while chunk := f.read(1 << 20):
            gz_digest.update(chunk)
    return gz_path, gz_digest.hexdigest(), os.path.getsize(gz_path), plain_digest.hexdigest()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True, help="full reference, e.g. docker.io/cryopod/cryopod:0.1.0")
    p.add_argument("--entrypoint", default="null", help="JSON array")
    p.add_argument("--cmd", default="null", help="JSON array")
    p.add_argument("--workdir", default="/")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--user", default="0:0")
    p.add_argument("layers", nargs="+")
    a = p.parse_args()
    if ":" not in a.name.rsplit("/", 1)[-1]:
        sys.exit(f"oci-pack.py: --name {a.name!r} needs a tag (NAME:TAG)")
    for d in a.layers:
        if not os.path.isdir(d):
            sys.exit(f"oci-pack.py: layer directory {d!r} does not exist")
    tag = a.name.rsplit(":", 1)[1]

    tmp_out = a.out + ".tmp"
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(a.out))) as work, \
            tarfile.open(tmp_out, mode="w", format=tarfile.PAX_FORMAT) as out:
        blobs = Blobs(out)
        layers, diff_ids = [], []
        for d in a.layers:
            path, digest, size, diff_id = gzip_layer(d, work)
            layers.append(blobs.put_file("application/vnd.oci.image.layer.v1.tar+gzip", path, digest, size))
            diff_ids.append(f"sha256:{diff_id}")
            os.unlink(path)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *a.env],
                "Entrypoint": json.loads(a.entrypoint),
                "Cmd": json.loads(a.cmd),
                "WorkingDir": a.workdir,
                "User": a.user,
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"scripts/image/oci-pack.py {os.path.basename(d)}"} for d in a.layers],
        }
        cfg = blobs.put("application/vnd.oci.image.config.v1+json", json.dumps(config, sort_keys=True).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cfg, "layers": layers}
        man = blobs.put("application/vnd.oci.image.manifest.v1+json", json.dumps(manifest, sort_keys=True).encode())
        man["annotations"] = {"io.containerd.image.name": a.name, "org.opencontainers.image.ref.name": tag}
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [man]}
        docker = [{"Config": "blobs/sha256/" + cfg["digest"][7:], "RepoTags": [a.name],
                   "Layers": ["blobs/sha256/" + l["digest"][7:] for l in layers]}]
        for name, obj in (("oci-layout", {"imageLayoutVersion": "1.0.0"}), ("index.json", index),
                          ("manifest.json", docker)):
            data = json.dumps(obj, sort_keys=True).encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            out.addfile(info, io.BytesIO(data))
    os.replace(tmp_out, a.out)
    print(f"{a.out}: {a.name} ({len(layers)} layers, manifest {man['digest'][:19]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
