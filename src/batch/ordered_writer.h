// The writing half of `berth batch`: takes batches back in input order, waits
// for each one's answer, and writes every record to the output or to the
// rejects file. A failed batch is retried row by row, so that only the rows
// that fail on their own are rejected; a transient error (the model busy or
// stopping) ends the run instead, resumable, because rejecting would lose rows.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "batch/checkpointer.h"
#include "batch/record_batch.h"
#include "batch/record_reader.h"
#include "batch/row_writer.h"

namespace berth {

// Rows done, for progress reports: written by the writer, read by anyone.
struct BatchCounters {
  std::atomic<int64_t> rows_read{0}, rows_written{0}, rows_rejected{0};
  std::atomic<uint64_t> offset{0};  // input bytes done
};

class OrderedWriter {
 public:
  struct Options {
    const RowWriter* rows = nullptr;
    RecordReader* reader = nullptr;  // rejected rows are read back from the input
    size_t keep_columns = 0;
    // One mapped row of a batch as a request, and running it (the per-row retry).
    std::function<std::unique_ptr<InferRequest>(const RecordBatch&, int64_t first, int64_t count)> make_request;
    std::function<Result<InferResponse>(std::unique_ptr<InferRequest>)> run_one;
    Checkpointer* files = nullptr;
    BatchCounters* counters = nullptr;
  };
  explicit OrderedWriter(Options options) : o_(std::move(options)) {}

  // Waits for `b`'s answer, writes its records, and advances the checkpoint.
  Status Write(RecordBatch& b);

  double busy_seconds() const { return busy_seconds_; }

 private:
  Options o_;
  double busy_seconds_ = 0;
};

}  // namespace berth
