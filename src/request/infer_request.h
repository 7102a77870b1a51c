// InferRequest / InferResponse: what protocols produce and consume.
// Protocols know these types, never backends.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "berth/tensor.h"

namespace berth {

struct RequestedOutput {
  std::string name;
  bool binary = false;  // parameters.binary_data
  // parameters.classification (Triton's classification extension): > 0
  // answers the top-k classes of each row as BYTES "value:index[:label]".
  int64_t classification = 0;
};

struct InferRequest {
  std::string id;
  bool has_id = false;
  std::vector<Tensor> inputs;            // after validation: in config order
  std::vector<RequestedOutput> outputs;  // empty = every output
  bool binary_output = false;            // parameters.binary_data_output

  // Rows in this request: the batch dimension, or 1 for unbatched models.
  int64_t batch_size = 1;

  // parameters.timeout_us: how long the request may wait in the queue (0 = the server default).
  int64_t timeout_us = 0;
  // When it must have started executing; max() = no limit. Set by the protocol.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();

  // parameters.trace: pipelines answer with per-step timings (InferResponse::parameters).
  bool trace = false;
  // The W3C `traceparent` the request came with (HTTP header, gRPC metadata),
  // already checked; remote pipeline steps pass it on. Empty = none.
  std::string traceparent;
};

// A response parameter: what v2 JSON and gRPC's InferParameter both carry.
using ParameterValue = std::variant<int64_t, std::string>;

struct InferResponse {
  std::string model_name;
  int64_t model_version = 0;
  std::string id;
  bool has_id = false;
  std::vector<Tensor> outputs;  // the requested outputs, in request (or config) order
  std::vector<bool> binary;     // per output: send as binary data
  std::vector<std::pair<std::string, ParameterValue>> parameters;  // in order; keys unique
};

}  // namespace berth
