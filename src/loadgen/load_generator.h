// A closed-loop load generator for `berth bench` (like Triton's
// perf_analyzer): N keep-alive connections (or gRPC channels) each send the
// next infer request as soon as the previous answer arrives, and the
// latencies of the answers that complete inside the measurement window are
// reported. Protocols: v2 over HTTP (JSON or binary tensors), v2 over gRPC
// (raw contents), TF Serving's REST predict (columnar JSON).
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
#include "loadgen/bench_options.h"
#include "loadgen/report.h"

namespace berth {

enum class BenchProtocol { kHttp, kGrpc, kTfServing };
// "http", "grpc" or "tfserving".
Result<BenchProtocol> ParseBenchProtocol(std::string_view name);

struct LoadGeneratorOptions {
  std::string url;  // http[s]://host:port (for gRPC: the gRPC port)
  BenchProtocol protocol = BenchProtocol::kHttp;
  std::string ca_file;     // https: trusted CAs (PEM); empty = the system's
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
  // The gRPC counterpart of Create's HTTP part.
  static Result<std::unique_ptr<LoadGenerator>> CreateGrpc(const LoadGeneratorOptions& options, const ServerUrl& url);
  // Percentiles, means and rates of one level's counts and latencies.
  LevelResult Summarize(LevelResult counts, std::vector<int64_t> latencies_ns, int connections) const;

  LoadGeneratorOptions options_;
  std::unique_ptr<Target> target_;  // resolved endpoints and the serialized request, or the gRPC channel
  RunDescription description_;
};

}  // namespace berth
