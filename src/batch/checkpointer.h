// The files a `berth batch` run writes and the checkpoint that vouches for
// them. The output and the rejects are written as FILE.partial; at least every
// `every_rows` rows or `every_secs` seconds both are synced and OUT.checkpoint
// is replaced (atomically, durably) with how far the input is done and how
// long each partial file was then. A killed run resumed with --resume cuts
// the partial files back to those lengths and reads on from that offset, so
// no row is lost or written twice. The last checkpoint, then the renames,
// end a run.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "batch/batch_files.h"
#include "berth/status.h"

namespace berth {

class Checkpointer {
 public:
  struct Options {
    std::string out;          // OUT (the checkpoint is OUT.checkpoint)
    std::string rejects;      // the rejects file
    std::string fingerprint;  // input identity and options; a checkpoint must match it to resume
    int64_t every_rows = 1'000'000;
    double every_secs = 2.0;
  };

  // OUT.checkpoint for `options`: nullopt when there is none. An error when
  // it is unreadable, malformed, or made for another input, model or options.
  static Result<std::optional<Checkpoint>> Load(const Options& options);

  // Starts fresh: removes an old checkpoint, creates the partial files
  // (durably, before any checkpoint can name them) and writes the headers.
  // The input starts at (`input_offset`, `input_line`).
  static Result<std::unique_ptr<Checkpointer>> Start(const Options& options, std::string_view out_header,
                                                     std::string_view rejects_header, uint64_t input_offset,
                                                     int64_t input_line);
  // Resumes at `from`: the partial files cut back to what it vouches for.
  static Result<std::unique_ptr<Checkpointer>> Resume(const Options& options, const Checkpoint& from);

  // Appends the rows of one batch of records.
  Status Append(std::string_view out, std::string_view rejects);
  // The input is done up to (`input_offset`, `input_line`), with these
  // totals; checkpoints when one is due, or now with `force`.
  Status Advance(uint64_t input_offset, int64_t input_line, int64_t rows_read, int64_t rows_written,
                 int64_t rows_rejected, bool force = false);
  // A checkpoint of what Advance last recorded (what is written so far stays for --resume).
  Status Flush();
  // The final checkpoint, then rejects and output renamed into place and the checkpoint removed.
  Status Commit();

  const Checkpoint& last() const { return last_; }

 private:
  Checkpointer(Options options, std::unique_ptr<PartialFile> out, std::unique_ptr<PartialFile> rejects,
               Checkpoint last);
  Status Write();

  Options options_;
  std::unique_ptr<PartialFile> out_, rejects_;
  Checkpoint last_;     // what the last durable checkpoint holds
  Checkpoint pending_;  // what Advance recorded since
  std::chrono::steady_clock::time_point last_time_ = std::chrono::steady_clock::now();
};

}  // namespace berth
