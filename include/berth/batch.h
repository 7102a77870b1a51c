// `berth batch`: stream a CSV or JSON Lines file through a model.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "berth/status.h"

namespace berth {

// How far a run is, reported every BatchOptions::progress_period_s.
struct BatchProgress {
  int64_t rows_read = 0;
  int64_t rows_written = 0;
  int64_t rows_rejected = 0;
  uint64_t bytes_done = 0;  // input bytes (from the start of the file, a resumed run included)
  uint64_t bytes_total = 0;
  double elapsed_s = 0;    // this run
  double bytes_per_s = 0;  // this run's rate
  double eta_s = 0;
};

struct BatchOptions {
  std::string model_dir;  // a model directory (model.yaml + version directories)
  int64_t version = -1;   // -1 = the highest
  std::string backend_dir;
  std::string in, out;
  std::string rejects;            // "" = OUT.rejects.csv / OUT.rejects.jsonl
  std::string in_format;          // csv | jsonl; "" = from --in's extension (.jsonl/.ndjson = jsonl, else csv)
  std::string out_format;         // csv | jsonl; "" = from --out's extension
  std::vector<std::string> keep;  // input columns copied verbatim in front of the outputs
  bool resume = false;            // continue from OUT.checkpoint
  int64_t max_rejects = 0;        // more rejects than this fail the run (after writing everything)
  int64_t batch_size = 0;         // rows per execution; 0 = the model's max_batch_size
  // Called on a thread of the run's own every progress_period_s seconds
  // (the CLI draws a bar or writes JSON lines); none = no reports.
  std::function<void(const BatchProgress&)> on_progress;
  double progress_period_s = 1.0;
  int64_t checkpoint_rows = 1'000'000;  // a durable checkpoint at least this often...
  double checkpoint_secs = 2.0;         // ...and this often
  size_t max_record_bytes = 64u << 20;
  size_t block_bytes = 1u << 20;  // read size
  // --shard I/N: only the records that start in the I-th of N equal byte
  // ranges of the input's data (cut points moved forward to the next record
  // start, found by reading the file as a single run would, so a quoted
  // newline is never taken for a record's end). Every file the run writes
  // is named FILE.part-I; MergeShards joins the parts. 0 = not sharded.
  int64_t shard_count = 0;
  int64_t shard_index = 0;
};

struct BatchSummary {
  int64_t rows_read = 0;
  int64_t rows_written = 0;
  int64_t rows_rejected = 0;
  uint64_t bytes_read = 0;
  double seconds = 0;
  bool resumed = false;
  std::string out_path, rejects_path;
  std::string text;  // the one-line human summary
  std::string json;  // the same as one JSON object
  bool ok() const { return ok_; }
  bool ok_ = true;  // false when rejects exceed --max-rejects
};

// Runs the model over every record of `in`, writing `out` and the rejects
// file. An error means the run could not start or could not continue (bad
// options, unreadable input, a model that fails to load, an I/O error); the
// partial output and checkpoint stay for --resume. Rejected records are not
// errors: they are counted in the summary, whose ok() says whether they stay
// within --max-rejects.
Result<BatchSummary> RunBatch(const BatchOptions& options);

// `berth batch merge`: the parts of a sharded run joined into the files a
// single run writes, byte for byte (the output, and the rejects with their
// original line numbers).
struct MergeOptions {
  std::string out;         // OUT: the parts are OUT.part-0 ... OUT.part-{N-1}
  std::string rejects;     // "" = OUT.rejects.csv / OUT.rejects.jsonl, as RunBatch names it
  std::string out_format;  // csv | jsonl; "" = from OUT's extension
  int64_t shards = 0;      // N
};

struct MergeSummary {
  int64_t parts = 0;
  uint64_t out_bytes = 0, rejects_bytes = 0;
  std::string text;  // one line for the terminal
};

// Every part must be there and finished (no FILE.part-I.partial or
// checkpoint beside it) and have the same header; the merged files are
// written as FILE.partial and renamed, the parts are kept.
Result<MergeSummary> MergeShards(const MergeOptions& options);

}  // namespace berth
