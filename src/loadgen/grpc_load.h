// The gRPC side of `berth bench --protocol grpc`: the model's metadata over
// KServe v2 gRPC, and the closed loop of ModelInfer calls (raw input
// contents, as tritonclient sends them), one channel per stream so that N
// streams are N connections, as N HTTP keep-alive connections are.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "berth/status.h"
#include "loadgen/report.h"
#include "protocol/v2/v2_client_codec.h"
#include "request/infer_request.h"

namespace berth {

struct GrpcLoadOptions {
  std::string host;
  std::string port;
  bool tls = false;
  std::string ca_file;  // TLS: trusted CAs (PEM); empty = the system's
  std::string model;
  int64_t version = 0;  // 0 = the server's choice
  std::chrono::milliseconds timeout{10000};
};

class GrpcLoad {
 public:
  // Opens a channel and fetches the model's metadata: Unavailable when the
  // server cannot be reached, NotFound with the server's message otherwise.
  static Result<std::unique_ptr<GrpcLoad>> Create(const GrpcLoadOptions& options);
  ~GrpcLoad();

  const V2ModelMetadata& metadata() const { return metadata_; }
  // The request every call sends; returns its serialized size.
  size_t SetRequest(const InferRequest& request);

  // `streams` closed loops from now until `end`; answers completing in
  // [start, end] are counted into `counts` and `latencies_ns`. Returns once
  // every call has finished (those still open at `end` are cancelled).
  void Run(int streams, std::chrono::steady_clock::time_point start, std::chrono::steady_clock::time_point end,
           LevelResult* counts, std::vector<int64_t>* latencies_ns);

  struct Impl;

 private:
  explicit GrpcLoad(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  V2ModelMetadata metadata_;
};

}  // namespace berth
