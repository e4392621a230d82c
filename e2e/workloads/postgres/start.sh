#!/bin/sh
# The e2e PostgreSQL pod's entrypoint (image docker.io/cryopod/e2e-postgres, scripts/image/build.sh): an
# empty $PGDATA gets initdb, then postgres replaces this shell (exec), so the postmaster is the container's
# PID 1 and its log goes to stderr: the runtime's pipe, `kubectl logs`.
#
# The settings, and why:
#   dynamic_shared_memory_type=mmap  the default (posix) puts dynamic shared memory in files in /dev/shm,
#       the pod's own tmpfs: a restore pod on another node would not have them. sysv is refused by the
#       dump (each process attaches those segments itself, not inherited from its parent). mmap keeps
#       them as files in $PGDATA/pg_dynshmem, on the volume the restored pod mounts: mapped again by
#       path there. Their contents are not in the checkpoint (shared file mappings) but in the files,
#       which keep what the stopped original last wrote.
#   huge_pages=off, jit=off  no hugetlb mapping; the image has no LLVM (llvmjit.so).
#   shared_buffers=16MB  the main shared memory (anonymous MAP_SHARED) is saved whole: keep it small.
#   hba_file  trust from any address: the e2e test's client connects from the host over the pod network.
set -eu
bin=/usr/lib/postgresql/15/bin
: "${PGDATA:?set PGDATA to a directory on a volume that the restored pod mounts too}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  "$bin/initdb" -D "$PGDATA" -U postgres -A trust --locale=C -E UTF8 --no-sync >&2
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses=0.0.0.0 -c port=5432 -c unix_socket_directories=/tmp \
  -c hba_file=/opt/postgres/pg_hba.conf -c dynamic_shared_memory_type=mmap -c huge_pages=off -c jit=off \
  -c shared_buffers=16MB -c max_connections=20 "$@"
