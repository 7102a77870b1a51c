// Files, read and written the one way berth does it: reads that never block
// on or run away with a hostile file, writes that are all-or-nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

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

// What an atomic write promises once it returns.
enum class Durability {
  // Readers see the old file or the new one, never a mix; a power loss may
  // still lose the new one (image archives: rebuilt if lost).
  kReplaceOnly,
  // Also on disk: the data is fsynced before the rename, the directory
  // after it (checkpoints that a resumed run trusts).
  kSynced,
};

// Writes `path` through a temporary file beside it (a unique hidden name),
// renamed over `path` only when everything was written: never a
// half-written file under `path`. The temporary file is removed on failure.
Status WriteFileAtomically(const std::string& path, std::string_view content, Durability durability);
// The same, with the content written by `write` into the temporary file it
// is given by name (for writers that stream, e.g. a tar of image layers).
Status WriteFileAtomically(const std::string& path, const std::function<Status(const std::string& temp_path)>& write,
                           Durability durability);

// A unique hidden name beside `path` (".name.tmp-1a2b3c4d") for a temporary file.
std::string TempPathBeside(const std::string& path);

// fsyncs the directory holding `path` (makes a rename in it durable).
Status SyncParentDirectory(const std::string& path);

}  // namespace berth
