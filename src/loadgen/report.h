// What one concurrency level of `berth bench` measured, and the three report
// formats (table, JSON, CSV).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loadgen/bench_options.h"

namespace berth {

// The nearest-rank percentile (0 < p <= 100) of ascending `sorted` values;
// 0 when `sorted` is empty.
int64_t PercentileOfSorted(const std::vector<int64_t>& sorted, double p);

// What one concurrency level measured. Latencies are of successful requests.
struct LevelResult {
  int connections = 0;
  double duration_s = 0;
  int64_t requests = 0;  // completed in the window: successes + errors
  int64_t successes = 0;
  int64_t rows = 0;  // successful rows (requests x batch)
  double throughput_rps = 0;
  double throughput_rows_per_s = 0;
  int64_t p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  double mean_us = 0;

  int64_t connection_errors = 0;         // refused, reset, closed mid-answer, malformed HTTP
  int64_t timeouts = 0;                  // no complete answer within timeout_ms
  int64_t non_2xx = 0;                   // answers with a status outside 200..299
  int64_t invalid_responses = 0;         // a 2xx other than 200, or (check_outputs) a body without "outputs"
  std::map<int, int64_t> status_counts;  // every answer that was not 200, by status

  int64_t errors() const { return connection_errors + timeouts + non_2xx + invalid_responses; }
};

// Describes the run for report headers.
struct RunDescription {
  std::string url;
  std::string model;
  int64_t batch_size = 1;  // rows per request
  bool binary = false;
  size_t request_bytes = 0;
  double warmup_s = 0;
  double duration_s = 0;
  std::string protocol = "http";  // http (v2), grpc (v2), tfserving (REST)
};

// Table: a header line and one row per level, then a line per level with
// errors. JSON: an array with one object per level. CSV: a header and one
// row per level. Each ends with a newline.
std::string FormatResults(const RunDescription& run, const std::vector<LevelResult>& levels, ReportFormat format);

}  // namespace berth
