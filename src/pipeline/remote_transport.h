// How a remote pipeline step reaches its target: KServe v2 over HTTP (binary
// tensors on a pooled keep-alive connection) or over gRPC (raw contents on
// one HTTP/2 channel). RemoteStep adds retries and the circuit breaker on
// top; a transport makes one try and says what it came to.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/pipeline_spec.h"
#include "protocol/v2/v2_client_codec.h"
#include "request/infer_request.h"

namespace berth {

class RemoteTransport {
 public:
  // One try's answer. `retryable`: no connection, or the target said it is
  // unavailable (HTTP 503, gRPC UNAVAILABLE). `target_failed`: what says the
  // target is unwell (no connection, no answer in time, a 5xx / INTERNAL),
  // counted by the circuit breaker; a 4xx is the request's fault, not its.
  using Done = std::function<void(Result<InferResponse> answer, bool retryable, bool target_failed)>;

  virtual ~RemoteTransport() = default;

  // GET /v2/models/M (HTTP) or ModelMetadata (gRPC), within the load timeout.
  virtual Result<V2ModelMetadata> FetchMetadata() = 0;
  // Sends `request` (its timeout_us already what is left of the deadline;
  // `deadline` max() = none); calls `done` once, on the transport's thread or this one.
  virtual void Infer(const InferRequest& request, std::chrono::steady_clock::time_point deadline, Done done) = 0;
};

// `token`: the bearer token sent as Authorization ("" = none).
Result<std::unique_ptr<RemoteTransport>> NewHttpTransport(const RemoteModel& remote, std::string token,
                                                          std::chrono::milliseconds timeout);
Result<std::unique_ptr<RemoteTransport>> NewGrpcTransport(const RemoteModel& remote, std::string token,
                                                          std::chrono::milliseconds timeout);

}  // namespace berth
