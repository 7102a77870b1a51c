#include "batch/shards.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "batch/batch_files.h"
#include "batch/row_writer.h"
#include "berth/batch.h"

namespace berth {

std::string ShardPath(const std::string& path, int64_t index) { return path + ".part-" + std::to_string(index); }

Result<ShardRange> FindShardRange(RecordReader* reader, int64_t index, int64_t count) {
  const uint64_t data = reader->data_offset(), size = std::max(reader->file_size(), reader->data_offset());
  auto cut = [&](int64_t k) {
    return data + static_cast<uint64_t>(static_cast<unsigned __int128>(size - data) * static_cast<uint64_t>(k) /
                                        static_cast<uint64_t>(count));
  };
  const uint64_t lo = cut(index), hi = index + 1 == count ? UINT64_MAX : cut(index + 1);
  ShardRange r;
  r.begin = size;
  r.begin_line = reader->data_line();
  bool found = false;
  if (lo == data) {  // shard 0 starts with the data
    r.begin = data;
    found = true;
    if (hi == UINT64_MAX) return r;
  }
  RETURN_IF_ERROR(reader->Seek(data, reader->data_line()));
  Record rec;
  for (;;) {
    ASSIGN_OR_RETURN(bool any, reader->Next(&rec));
    if (!any) break;
    if (!found && rec.offset >= lo) {
      r.begin = rec.offset;
      r.begin_line = rec.line;
      found = true;
    }
    if (found && rec.offset >= hi) {
      r.end = rec.offset;
      break;
    }
  }
  return r;
}

namespace {

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// The bytes of `path` from `offset` on, appended to `out`.
Status CopyFrom(const std::string& path, uint64_t offset, PartialFile* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ErrnoStatus(errno, path + ": cannot open");
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return FailedPrecondition(path + ": not a regular file");
  std::vector<char> buf(1 << 20);
  if (::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) return ErrnoStatus(errno, path + ": cannot seek");
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, path + ": cannot read");
    if (n == 0) return Status::Ok();
    RETURN_IF_ERROR(out->Append(std::string_view(buf.data(), static_cast<size_t>(n))));
  }
}

// The header of a part: its CSV header row as the CSV reader finds it, or nothing (JSONL).
Result<std::string> PartHeader(const std::string& path, TableFormat format) {
  if (format != TableFormat::kCsv) return std::string();
  ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader, RecordReader::OpenCsv(path, RecordReader::Options{}));
  std::string header;
  RETURN_IF_ERROR(reader->ReadRaw(0, static_cast<size_t>(reader->data_offset()), &header));
  return header;
}

// Checks that FILE.part-0 ... FILE.part-{N-1} are there, finished, and from one run; returns their header.
Result<std::string> CheckParts(const std::string& path, TableFormat format, int64_t shards) {
  std::string header;
  for (int64_t i = 0; i < shards; ++i) {
    const std::string part = ShardPath(path, i);
    if (!Exists(part)) {
      if (Exists(part + ".partial")) {
        return FailedPrecondition(part + ": shard " + std::to_string(i) + " has not finished (" + part +
                                  ".partial is there); run it again, with --resume to continue it");
      }
      return NotFound(part + ": missing; run shard " + std::to_string(i) + " of " + std::to_string(shards));
    }
    if (Exists(part + ".partial")) {
      return FailedPrecondition(part + ": shard " + std::to_string(i) + " is being run again (" + part +
                                ".partial is there); merge when it has finished");
    }
    ASSIGN_OR_RETURN(std::string h, PartHeader(part, format));
    if (i == 0) {
      header = h;
    } else if (h != header) {
      return FailedPrecondition(part + ": its header differs from " + ShardPath(path, 0) +
                                "'s: the parts come from different runs");
    }
  }
  if (Exists(ShardPath(path, shards))) {
    return FailedPrecondition(ShardPath(path, shards) + " exists: the run had more than " + std::to_string(shards) +
                              " shards");
  }
  return header;
}

// Joins the parts into FILE (written as FILE.partial, then renamed): the header once, then every part's rows.
Result<uint64_t> JoinParts(const std::string& path, const std::string& header, int64_t shards) {
  ASSIGN_OR_RETURN(std::unique_ptr<PartialFile> out, PartialFile::Open(path, false, 0));
  RETURN_IF_ERROR(out->Append(header));
  for (int64_t i = 0; i < shards; ++i) RETURN_IF_ERROR(CopyFrom(ShardPath(path, i), header.size(), out.get()));
  uint64_t bytes = out->size();
  RETURN_IF_ERROR(out->Commit());
  return bytes;
}

}  // namespace

Result<MergeSummary> MergeShards(const MergeOptions& o) {
  if (o.out.empty()) return InvalidArgument("--out: required");
  if (o.shards < 1) return InvalidArgument("--shards: expected the number of shards the run had (1 or more)");
  ASSIGN_OR_RETURN(TableFormat format, ResolveTableFormat(o.out_format, o.out, "--format"));
  const std::string rejects =
      o.rejects.empty() ? o.out + (format == TableFormat::kCsv ? ".rejects.csv" : ".rejects.jsonl") : o.rejects;
  // The merged files are written like a run's: no other merge or run may write them meanwhile.
  ASSIGN_OR_RETURN(std::unique_ptr<OutputLock> lock, OutputLock::Acquire(o.out));
  MergeSummary s;
  s.parts = o.shards;
  ASSIGN_OR_RETURN(std::string out_header, CheckParts(o.out, format, o.shards));
  ASSIGN_OR_RETURN(std::string rejects_header, CheckParts(rejects, format, o.shards));
  // Rejects first: the output appearing is what says the merge is done.
  ASSIGN_OR_RETURN(s.rejects_bytes, JoinParts(rejects, rejects_header, o.shards));
  ASSIGN_OR_RETURN(s.out_bytes, JoinParts(o.out, out_header, o.shards));
  char line[512];
  std::snprintf(line, sizeof line, "berth batch merge: %lld parts -> %s (%llu bytes), rejects %s (%llu bytes)",
                static_cast<long long>(s.parts), o.out.c_str(), static_cast<unsigned long long>(s.out_bytes),
                rejects.c_str(), static_cast<unsigned long long>(s.rejects_bytes));
  s.text = line;
  return s;
}

}  // namespace berth
