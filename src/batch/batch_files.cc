#include "batch/batch_files.h"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/json_writer.h"

namespace berth {
namespace {

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, path + ": write failed");
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

Result<std::unique_ptr<PartialFile>> PartialFile::Open(const std::string& path, bool resume, uint64_t keep_bytes) {
  std::string partial = path + ".partial";
  struct stat done;
  if (resume && ::access(partial.c_str(), F_OK) != 0 && ::stat(path.c_str(), &done) == 0 &&
      static_cast<uint64_t>(done.st_size) >= keep_bytes) {
    // Killed while committing, after this file's rename: take it back.
    if (::rename(path.c_str(), partial.c_str()) != 0) {
      return ErrnoStatus(errno, path + ": cannot rename back to " + partial);
    }
  }
  int flags = O_WRONLY | O_CLOEXEC | (resume ? 0 : O_CREAT | O_TRUNC);
  int fd = ::open(partial.c_str(), flags, 0644);
  if (fd < 0) {
    if (resume && errno == ENOENT) {
      return FailedPrecondition(partial + ": missing, so the checkpoint cannot be resumed; run without --resume");
    }
    return ErrnoStatus(errno, partial + ": cannot write");
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
      return ErrnoStatus(errno, partial + ": cannot cut back to the checkpoint");
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
  if (::fdatasync(fd_) != 0) return ErrnoStatus(errno, path_ + ".partial: fsync failed");
  return Status::Ok();
}

Status PartialFile::Commit() {
  RETURN_IF_ERROR(Sync());
  ::close(fd_);
  fd_ = -1;
  std::string partial = path_ + ".partial";
  if (::rename(partial.c_str(), path_.c_str()) != 0) {
    return ErrnoStatus(errno, path_ + ": cannot rename " + partial + " to it");
  }
  return SyncParentDirectory(path_);
}

Result<std::unique_ptr<OutputLock>> OutputLock::Acquire(const std::string& path) {
  const std::string lock = path + ".lock";
  for (int attempt = 0; attempt < 8; ++attempt) {
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return ErrnoStatus(errno, path + ": cannot write (" + lock + ")");
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return FailedPrecondition(path + ": another berth batch is writing it (" + lock + " is locked)");
      }
      return ErrnoStatus(err, lock + ": cannot lock");
    }
    // The holder before us may have removed the file between our open and our lock: then lock the new one.
    struct stat held, named;
    if (::fstat(fd, &held) == 0 && ::stat(lock.c_str(), &named) == 0 && held.st_dev == named.st_dev &&
        held.st_ino == named.st_ino) {
      return std::unique_ptr<OutputLock>(new OutputLock(lock, fd));
    }
    ::close(fd);
  }
  return FailedPrecondition(lock + ": cannot lock (it keeps being replaced)");
}

OutputLock::~OutputLock() {
  ::unlink(lock_path_.c_str());
  ::close(fd_);
}

}  // namespace berth
