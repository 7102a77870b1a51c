#include "batch/checkpointer.h"

#include <unistd.h>

#include "common/file_util.h"

namespace berth {

namespace {
std::string CheckpointPath(const Checkpointer::Options& o) { return o.out + ".checkpoint"; }
}  // namespace

Result<std::optional<Checkpoint>> Checkpointer::Load(const Options& options) {
  const std::string path = CheckpointPath(options);
  Result<std::string> text = ReadRegularFile(path, 1 << 20);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return std::optional<Checkpoint>();
    return text.status();
  }
  ASSIGN_OR_RETURN(Checkpoint c, CheckpointFromJson(*text, path));
  if (c.fingerprint != options.fingerprint) {
    return FailedPrecondition(path + ": made for another input file, model or options (" + c.fingerprint +
                              "); now: " + options.fingerprint + ". Delete it, or run without --resume to start over");
  }
  return std::optional<Checkpoint>(std::move(c));
}

Checkpointer::Checkpointer(Options options, std::unique_ptr<PartialFile> out, std::unique_ptr<PartialFile> rejects,
                           Checkpoint last)
    : options_(std::move(options)), out_(std::move(out)), rejects_(std::move(rejects)), last_(last), pending_(last) {}

Result<std::unique_ptr<Checkpointer>> Checkpointer::Start(const Options& options, std::string_view out_header,
                                                          std::string_view rejects_header, uint64_t input_offset,
                                                          int64_t input_line) {
  ::unlink(CheckpointPath(options).c_str());
  ASSIGN_OR_RETURN(std::unique_ptr<PartialFile> out, PartialFile::Open(options.out, false, 0));
  ASSIGN_OR_RETURN(std::unique_ptr<PartialFile> rejects, PartialFile::Open(options.rejects, false, 0));
  // The removed checkpoint and the new partial files are durable before any checkpoint can refer to them.
  RETURN_IF_ERROR(SyncParentDirectory(options.out));
  RETURN_IF_ERROR(SyncParentDirectory(options.rejects));
  RETURN_IF_ERROR(out->Append(out_header));
  RETURN_IF_ERROR(rejects->Append(rejects_header));
  Checkpoint c;
  c.fingerprint = options.fingerprint;
  c.input_offset = input_offset;
  c.input_line = input_line;
  c.out_bytes = out->size();
  c.rejects_bytes = rejects->size();
  return std::unique_ptr<Checkpointer>(new Checkpointer(options, std::move(out), std::move(rejects), c));
}

Result<std::unique_ptr<Checkpointer>> Checkpointer::Resume(const Options& options, const Checkpoint& from) {
  ASSIGN_OR_RETURN(std::unique_ptr<PartialFile> out, PartialFile::Open(options.out, true, from.out_bytes));
  ASSIGN_OR_RETURN(std::unique_ptr<PartialFile> rejects, PartialFile::Open(options.rejects, true, from.rejects_bytes));
  return std::unique_ptr<Checkpointer>(new Checkpointer(options, std::move(out), std::move(rejects), from));
}

Status Checkpointer::Append(std::string_view out, std::string_view rejects) {
  RETURN_IF_ERROR(out_->Append(out));
  return rejects_->Append(rejects);
}

Status Checkpointer::Advance(uint64_t input_offset, int64_t input_line, int64_t rows_read, int64_t rows_written,
                             int64_t rows_rejected, bool force) {
  pending_.input_offset = input_offset;
  pending_.input_line = input_line;
  pending_.rows_read = rows_read;
  pending_.rows_written = rows_written;
  pending_.rows_rejected = rows_rejected;
  double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_time_).count();
  if (!force && rows_read - last_.rows_read < options_.every_rows && since < options_.every_secs) {
    return Status::Ok();
  }
  return Write();
}

Status Checkpointer::Flush() { return Write(); }

Status Checkpointer::Write() {
  RETURN_IF_ERROR(out_->Sync());
  RETURN_IF_ERROR(rejects_->Sync());
  pending_.out_bytes = out_->size();
  pending_.rejects_bytes = rejects_->size();
  RETURN_IF_ERROR(WriteFileAtomically(CheckpointPath(options_), CheckpointToJson(pending_), Durability::kSynced));
  last_ = pending_;
  last_time_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

Status Checkpointer::Commit() {
  RETURN_IF_ERROR(Write());
  RETURN_IF_ERROR(rejects_->Commit());
  RETURN_IF_ERROR(out_->Commit());
  ::unlink(CheckpointPath(options_).c_str());
  return Status::Ok();
}

}  // namespace berth
