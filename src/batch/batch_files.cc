#include "batch/batch_files.h"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/json_writer.h"

namespace berth {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Internal(path + ": write failed: " + ErrnoText());
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

}  // namespace

std::string CheckpointToJson(const Checkpoint& c) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("berth_batch_checkpoint");
  w.Int(1);
  w.Key("fingerprint");
  w.String(c.fingerprint);
  w.Key("input_offset");
  w.Int(c.input_offset);
  w.Key("input_line");
  w.Int(c.input_line);
  w.Key("rows_read");
  w.Int(c.rows_read);
  w.Key("rows_written");
  w.Int(c.rows_written);
  w.Key("rows_rejected");
  w.Int(c.rows_rejected);
  w.Key("out_bytes");
  w.Int(c.out_bytes);
  w.Key("rejects_bytes");
  w.Int(c.rejects_bytes);
  w.EndObject();
  out.push_back('\n');
  return out;
}

Result<Checkpoint> CheckpointFromJson(std::string_view json, const std::string& source) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  auto bad = [&](const std::string& why) {
    return InvalidArgument(source + ": not a berth batch checkpoint (" + why + "); delete it to start over");
  };
  if (auto err = parser.parse(json.data(), json.size()).get(doc)) return bad(simdjson::error_message(err));
  Checkpoint c;
  std::string_view fp;
  if (doc["fingerprint"].get(fp)) return bad("no fingerprint");
  c.fingerprint = std::string(fp);
  struct {
    const char* key;
    int64_t* out;
  } ints[] = {{"input_line", &c.input_line},
              {"rows_read", &c.rows_read},
              {"rows_written", &c.rows_written},
              {"rows_rejected", &c.rows_rejected}};
  for (auto& f : ints) {
    if (doc[f.key].get(*f.out)) return bad(std::string("no ") + f.key);
  }
  struct {
    const char* key;
    uint64_t* out;
  } uints[] = {{"input_offset", &c.input_offset}, {"out_bytes", &c.out_bytes}, {"rejects_bytes", &c.rejects_bytes}};
  for (auto& f : uints) {
    if (doc[f.key].get(*f.out)) return bad(std::string("no ") + f.key);
  }
  if (c.rows_read != c.rows_written + c.rows_rejected) return bad("its row counts do not add up");
  return c;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path + ": does not exist");
    return Internal(path + ": cannot open: " + ErrnoText());
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status SyncParentDirectory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Internal(dir + ": cannot open directory: " + ErrnoText());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Internal(dir + ": fsync of the directory failed: " + ErrnoText());
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view content) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Internal(tmp + ": cannot create: " + ErrnoText());
  Status s = WriteAll(fd, content, tmp);
  if (s.ok() && ::fdatasync(fd) != 0) s = Internal(tmp + ": fsync failed: " + ErrnoText());
  ::close(fd);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Internal(path + ": rename failed: " + ErrnoText());
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncParentDirectory(path);
}

Result<std::unique_ptr<PartialFile>> PartialFile::Open(const std::string& path, bool resume, uint64_t keep_bytes) {
  std::string partial = path + ".partial";
  struct stat done;
  if (resume && ::access(partial.c_str(), F_OK) != 0 && ::stat(path.c_str(), &done) == 0 &&
      static_cast<uint64_t>(done.st_size) >= keep_bytes) {
    // Killed while committing, after this file's rename: take it back.
    if (::rename(path.c_str(), partial.c_str()) != 0) {
      return Internal(path + ": cannot rename back to " + partial + ": " + ErrnoText());
    }
  }
  int flags = O_WRONLY | O_CLOEXEC | (resume ? 0 : O_CREAT | O_TRUNC);
  int fd = ::open(partial.c_str(), flags, 0644);
  if (fd < 0) {
    if (resume && errno == ENOENT) {
      return FailedPrecondition(partial + ": missing, so the checkpoint cannot be resumed; run without --resume");
    }
    return InvalidArgument(partial + ": cannot write: " + ErrnoText());
  }
  uint64_t size = 0;
  if (resume) {
    struct stat st;
    if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < keep_bytes) {
      ::close(fd);
      return FailedPrecondition(partial + ": shorter than its checkpoint says (" + std::to_string(keep_bytes) +
                                " bytes); run without --resume");
    }
    if (::ftruncate(fd, static_cast<off_t>(keep_bytes)) != 0 ||
        ::lseek(fd, static_cast<off_t>(keep_bytes), SEEK_SET) < 0) {
      ::close(fd);
      return Internal(partial + ": cannot cut back to the checkpoint: " + ErrnoText());
    }
    size = keep_bytes;
  }
  return std::unique_ptr<PartialFile>(new PartialFile(path, fd, size));
}

PartialFile::~PartialFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status PartialFile::Append(std::string_view data) {
  RETURN_IF_ERROR(WriteAll(fd_, data, path_ + ".partial"));
  size_ += data.size();
  return Status::Ok();
}

Status PartialFile::Sync() {
  if (::fdatasync(fd_) != 0) return Internal(path_ + ".partial: fsync failed: " + ErrnoText());
  return Status::Ok();
}

Status PartialFile::Commit() {
  RETURN_IF_ERROR(Sync());
  ::close(fd_);
  fd_ = -1;
  std::string partial = path_ + ".partial";
  if (::rename(partial.c_str(), path_.c_str()) != 0) {
    return Internal(path_ + ": cannot rename " + partial + " to it: " + ErrnoText());
  }
  return SyncParentDirectory(path_);
}

}  // namespace berth
