// A pipeline step served by another berth (or any v2) server: its metadata
// fetched at load, each request sent with binary tensors over a pooled
// keep-alive connection (TLS, bearer token, request id passed on, the
// remaining deadline as the v2 `timeout` parameter), retried on connection
// failures and 503 while the deadline allows, and a circuit breaker: after
// kTripAfter failures in a row the target is marked down for a back-off and
// requests fail fast instead of hammering it.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "common/pipeline_spec.h"
#include "net/http_client.h"
#include "protocol/v2/v2_client_codec.h"
#include "scheduler/scheduler.h"

namespace berth {

class RemoteStep {
 public:
  static constexpr int kTripAfter = 5;
  static constexpr std::chrono::milliseconds kDownFor{1000};

  // Reads the token file and fetches the model's metadata (GET
  // URL/v2/models/M): Unavailable naming the target when it cannot.
  static Result<std::unique_ptr<RemoteStep>> Create(const PipelineStep& step, std::chrono::milliseconds timeout);

  const V2ModelMetadata& metadata() const { return metadata_; }
  // Milliseconds the circuit breaker still keeps the target down; 0 = up.
  int64_t DownForMs() const;
  // "remote http://host:port model m", for errors.
  const std::string& where() const { return where_; }

  // Sends `request` (deadline: when the answer is due; max() = none) and
  // calls `done` once, on the client's I/O thread or this one.
  void Infer(std::unique_ptr<InferRequest> request, std::chrono::steady_clock::time_point deadline,
             InferCompletion done);

 private:
  RemoteStep(const PipelineStep& step, std::chrono::milliseconds timeout);
  void Send(std::shared_ptr<InferRequest> request, std::chrono::steady_clock::time_point deadline, int tries_left,
            InferCompletion done);
  void Record(bool ok);

  RemoteModel remote_;
  int retries_;
  std::string where_;
  Url infer_url_;
  std::string token_;
  V2ModelMetadata metadata_;
  std::unique_ptr<HttpClient> client_;
  std::atomic<int> failures_in_a_row_{0};
  std::atomic<int64_t> down_until_ms_{0};  // steady clock, ms
};

}  // namespace berth
