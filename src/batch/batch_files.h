// The files a `berth batch` run writes: the output and the rejects, each
// under a temporary name (FILE.partial) until the run finishes, and the
// checkpoint (OUT.checkpoint) that lets --resume continue a killed run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "berth/status.h"
#include "common/file_util.h"

namespace berth {

// Everything up to `input_offset` is durably in the output and rejects files,
// whose lengths were `out_bytes` and `rejects_bytes` at that point.
struct Checkpoint {
  std::string fingerprint;  // input identity and options; must match to resume
  uint64_t input_offset = 0;
  int64_t input_line = 1;
  int64_t rows_read = 0;
  int64_t rows_written = 0;
  int64_t rows_rejected = 0;
  uint64_t out_bytes = 0;
  uint64_t rejects_bytes = 0;
};

std::string CheckpointToJson(const Checkpoint& c);
Result<Checkpoint> CheckpointFromJson(std::string_view json, const std::string& source);

// An output file written as PATH.partial and renamed to PATH by Commit().
class PartialFile {
 public:
  // Fresh: creates (truncates) PATH.partial. Resume: opens the existing
  // PATH.partial and cuts it back to `keep_bytes`, the checkpointed length.
  static Result<std::unique_ptr<PartialFile>> Open(const std::string& path, bool resume, uint64_t keep_bytes);
  ~PartialFile();

  Status Append(std::string_view data);
  uint64_t size() const { return size_; }
  Status Sync();  // fdatasync: everything appended so far is durable
  // Syncs, closes and renames PATH.partial to PATH (and syncs the directory).
  Status Commit();
  const std::string& path() const { return path_; }

 private:
  PartialFile(std::string path, int fd, uint64_t size) : path_(std::move(path)), fd_(fd), size_(size) {}
  std::string path_;
  int fd_;
  uint64_t size_;
};

// Held while a run writes PATH: PATH.lock, flock()ed. A second `berth
// batch` writing the same files (Kubernetes starting a Job index twice, a
// retried command) fails at once instead of writing into the first one's.
// The lock goes with the process, however it ends; the file is removed when
// the holder lets go.
class OutputLock {
 public:
  static Result<std::unique_ptr<OutputLock>> Acquire(const std::string& path);
  ~OutputLock();

 private:
  OutputLock(std::string lock_path, int fd) : lock_path_(std::move(lock_path)), fd_(fd) {}
  std::string lock_path_;
  int fd_;
};

}  // namespace berth
