#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

namespace berth {

Status ErrnoStatus(int err, const std::string& what) {
  std::string message = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT: return NotFound(std::move(message));
    case EACCES:
    case EPERM: return Status(StatusCode::kPermissionDenied, std::move(message));
    default: return FailedPrecondition(std::move(message));
  }
}

namespace {

Status NotRegular(const std::string& path, mode_t mode) {
  const char* kind = S_ISDIR(mode)    ? "a directory"
                     : S_ISFIFO(mode) ? "a FIFO"
                     : S_ISCHR(mode)  ? "a character device"
                     : S_ISBLK(mode)  ? "a block device"
                     : S_ISSOCK(mode) ? "a socket"
                                      : "not a regular file";
  return FailedPrecondition(path + ": is " + std::string(kind) + ", not a regular file; refused");
}

Status TooLarge(const std::string& path, uint64_t max_bytes) {
  return FailedPrecondition(path + ": is larger than the limit of " + std::to_string(max_bytes) + " bytes; refused");
}

}  // namespace

Result<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes) {
  // stat first, so that a device or FIFO is never even opened (opening some devices has effects).
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, path + ": cannot be read");
  if (!S_ISREG(st.st_mode)) return NotRegular(path, st.st_mode);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return TooLarge(path, max_bytes);
  // The name may have been swapped since: O_NONBLOCK keeps a FIFO from blocking the open, fstat checks again.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, path + ": cannot be read");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, path + ": cannot be read");
  if (!S_ISREG(st.st_mode)) return NotRegular(path, st.st_mode);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return TooLarge(path, max_bytes);
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t have = 0;
  for (;;) {
    if (have == out.size()) {
      if (out.size() >= max_bytes) {
        // At the limit: one byte more means the file grew past it.
        char probe;
        ssize_t n = ::read(fd, &probe, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ErrnoStatus(errno, path + ": read failed");
        if (n > 0) return TooLarge(path, max_bytes);
        break;
      }
      out.resize(std::min<uint64_t>(max_bytes, std::max<size_t>(out.size() * 2, 4096)));
    }
    ssize_t n = ::read(fd, out.data() + have, out.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, path + ": read failed");
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  out.resize(have);
  return out;
}

std::string TempPathBeside(const std::string& path) {
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".tmp-%08x", rd());
  std::filesystem::path p(path);
  return (p.parent_path() / ("." + p.filename().string() + suffix)).string();
}

namespace {

Status FsyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, path + ": cannot be opened to sync");
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(err, path + ": fsync failed");
  return Status::Ok();
}

}  // namespace

Status SyncParentDirectory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, dir + ": cannot open directory");
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(err, dir + ": fsync of the directory failed");
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, const std::function<Status(const std::string& temp_path)>& write,
                           Durability durability) {
  std::string tmp = TempPathBeside(path);
  Status s = write(tmp);
  if (s.ok() && durability == Durability::kSynced) s = FsyncFile(tmp);
  if (s.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoStatus(errno, path + ": cannot be written");
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return durability == Durability::kSynced ? SyncParentDirectory(path) : Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view content, Durability durability) {
  return WriteFileAtomically(
      path,
      [&](const std::string& tmp) -> Status {
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) return ErrnoStatus(errno, path + ": cannot be written");
        std::string_view rest = content;
        Status s;
        while (!rest.empty() && s.ok()) {
          ssize_t n = ::write(fd, rest.data(), rest.size());
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            s = ErrnoStatus(errno, path + ": write failed");
          } else {
            rest.remove_prefix(static_cast<size_t>(n));
          }
        }
        if (::close(fd) != 0 && s.ok()) s = ErrnoStatus(errno, path + ": write failed");
        return s;
      },
      durability);
}

}  // namespace berth
