// A closed-loop HTTP/1.1 load generator for `berth bench` (like Triton's
// perf_analyzer): N keep-alive connections each send the next infer request
// as soon as the previous answer arrives, and the latencies of the answers
// that complete inside the measurement window are reported.
//
// The CLI (tools/berth/bench_command.cc) only parses flags into
// LoadGeneratorOptions and prints what FormatResults returns.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "berth/status.h"

namespace berth {

// An http://host[:port][/prefix] base URL. Only plain HTTP.
struct ServerUrl {
  std::string host;    // without brackets for IPv6 literals
  std::string port;    // "80" when the URL names none
  std::string prefix;  // path before /v2, without a trailing slash ("" usually)
};

// InvalidArgument naming the URL if it is not http://host[:port][/path].
Result<ServerUrl> ParseServerUrl(std::string_view url);

// "a", "a:b" or "a:b:step" -> a, a+step, ... <= b. InvalidArgument unless
// 1 <= a <= b and step >= 1.
Result<std::vector<int>> ParseConcurrencyRange(std::string_view range);

// "NAME:d1,d2,..." -> {NAME, {d1, d2, ...}}; dims are positive integers.
Result<std::pair<std::string, std::vector<int64_t>>> ParseShapeOption(std::string_view option);

enum class ReportFormat { kTable, kJson, kCsv };
// "table", "json" or "csv".
Result<ReportFormat> ParseReportFormat(std::string_view name);

// The nearest-rank percentile (0 < p <= 100) of ascending `sorted` values;
// 0 when `sorted` is empty.
int64_t PercentileOfSorted(const std::vector<int64_t>& sorted, double p);

struct LoadGeneratorOptions {
  std::string url;         // http://host:port
  std::string model;       // model name
  int64_t version = 0;     // 0 = the server's default (highest) version
  double duration_s = 5;   // measurement window
  double warmup_s = 1;     // requests that complete before the window are not counted
  int timeout_ms = 10000;  // per request (write + read), and for the metadata request
  int threads = 0;         // client I/O threads; 0 = min(connections, CPUs)

  // Request body: a file holding a complete v2 JSON request, or (when empty)
  // random data synthesized from the model's metadata.
  std::string input_data_path;
  // Replaces the -1 dims of an input (the dims after the batch dimension).
  std::map<std::string, std::vector<int64_t>> shapes;
  int64_t batch_size = 1;      // rows per request for batched models
  bool binary = false;         // binary tensor extension for inputs, and binary outputs
  bool check_outputs = false;  // parse each 200 answer's JSON and require "outputs"
};

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
};

// Table: a header line and one row per level, then a line per level with
// errors. JSON: an array with one object per level. CSV: a header and one
// row per level. Each ends with a newline.
std::string FormatResults(const RunDescription& run, const std::vector<LevelResult>& levels, ReportFormat format);

class LoadGenerator {
 public:
  // Checks the options, resolves the server, fetches the model's metadata and
  // builds the request body. InvalidArgument for bad options or an input file
  // that is not a valid request, Unavailable when the server cannot be
  // reached, NotFound when it does not serve the model (the message carries
  // the server's answer).
  static Result<std::unique_ptr<LoadGenerator>> Create(const LoadGeneratorOptions& options);
  ~LoadGenerator();

  // Runs one level: `connections` fresh connections for warmup + duration,
  // then closes them. Blocks the calling thread for about warmup + duration
  // (never more than that plus connection teardown). Not thread-safe.
  LevelResult Run(int connections);

  const RunDescription& description() const { return description_; }

 private:
  struct Target;
  LoadGenerator(const LoadGeneratorOptions& options, std::unique_ptr<Target> target);

  LoadGeneratorOptions options_;
  std::unique_ptr<Target> target_;  // resolved endpoints and the serialized request
  RunDescription description_;
};

}  // namespace berth
