// A pipeline step served by another berth (or any v2) server, over HTTP or
// gRPC (remote_transport.h): its metadata fetched at load, each request sent
// with the remaining deadline (the v2 `timeout` parameter, the gRPC
// deadline), the bearer token, request id and traceparent passed on,
// retried on connection failures and "unavailable" while the deadline
// allows, and a circuit breaker: after kTripAfter failures in a row the
// target is marked down for a back-off and requests fail fast instead of
// hammering it.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "common/pipeline_spec.h"
#include "pipeline/remote_transport.h"
#include "scheduler/scheduler.h"

namespace berth {

class RemoteStep {
 public:
  static constexpr int kTripAfter = 5;
  static constexpr std::chrono::milliseconds kDownFor{1000};

  // Reads the token file and fetches the model's metadata: Unavailable
  // naming the target when it cannot.
  static Result<std::unique_ptr<RemoteStep>> Create(const PipelineStep& step, std::chrono::milliseconds timeout);

  const V2ModelMetadata& metadata() const { return metadata_; }
  // Milliseconds the circuit breaker still keeps the target down; 0 = up.
  int64_t DownForMs() const;
  // "remote http://host:port model m" (", over gRPC" for gRPC), for errors.
  const std::string& where() const { return where_; }

  // Sends `request` (deadline: when the answer is due; max() = none) and
  // calls `done` once, on the transport's thread or this one.
  void Infer(std::unique_ptr<InferRequest> request, std::chrono::steady_clock::time_point deadline,
             InferCompletion done);

 private:
  explicit RemoteStep(const PipelineStep& step);
  void Send(std::shared_ptr<InferRequest> request, std::chrono::steady_clock::time_point deadline, int tries_left,
            InferCompletion done);
  void Record(bool ok);

  int retries_;
  std::string where_;
  V2ModelMetadata metadata_;
  std::unique_ptr<RemoteTransport> transport_;
  std::atomic<int> failures_in_a_row_{0};
  std::atomic<int64_t> down_until_ms_{0};  // steady clock, ms
};

}  // namespace berth
