// External objects (a pipe whose other end is outside the dumped tree: a container's stdio to the
// runtime's shim, a shell's pipe) are saved by identity only; a restore re-attaches each to an fd the
// restorer supplies, as CRIU's --inherit-fd does. By default a saved stdio fd (0, 1, 2) takes the
// restorer's own fd of that number, or, for a stub someone else started (a restore pod's container),
// the stub's own: the new container's stdio take the old one's places.
#pragma once

#include <vector>

#include "file_kind.h"

namespace cryopod {

// Marks an OpenFile external (FileState num "external" = 1).
void mark_external(OpenFile& f);
bool is_external(const OpenFile& f);

// Plans the restore of the external fds of these images: every one gets a source (as requested, or the
// default for stdio), or a clear EINHERIT error naming the fd. `pass_fds` are the restorer's fds a stub
// it starts must be given (StubProcess pass_fds); the scope's inherit list then names them as the
// stub's own fds.
RestoreScope plan_inherit(const std::vector<const TaskImage*>& tasks, const std::vector<InheritFd>& requested,
                          bool stub_adopted, std::vector<int>& pass_fds);

// Inside a morphing stub, before its own fds are closed: keeps the stub's fds the plan takes sources
// from at high numbers (scope.stub_fds).
void keep_stub_fds(Morph& m, RestoreScope& scope);

// The fd an external OpenFile is re-attached to, opened in the stub (the driver places it).
long open_inherited(Morph& m, const OpenFile& f, RestoreScope& scope);

}  // namespace cryopod
