// Files, read and written the one way berth does it: reads that never block
// on or run away with a hostile file, writes that are all-or-nothing.
#pragma once

#include <cstdint>
#include <string>

#include "berth/status.h"

namespace berth {

// A Status for a failed system call: `what` + ": " + strerror(err). NotFound
// for ENOENT, PermissionDenied for EACCES/EPERM, FailedPrecondition otherwise.
Status ErrnoStatus(int err, const std::string& what);

// Reads the whole of `path`, which must be a regular file (symlinks are
// followed) of at most `max_bytes`. Anything else is refused without being
// read: a FIFO or a device (opened, if at all, with O_NONBLOCK so that it
// cannot block the caller), a directory, a file over the limit (also one
// that grows past it while being read). NotFound if it does not exist.
// Messages name `path`, never the file's contents.
Result<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes);

}  // namespace berth
