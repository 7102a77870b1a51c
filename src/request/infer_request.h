// InferRequest / InferResponse: what protocols produce and consume.
// Protocols know these types, never backends.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "berth/tensor.h"

namespace berth {

struct RequestedOutput {
  std::string name;
  bool binary = false;  // parameters.binary_data
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
};

struct InferResponse {
  std::string model_name;
  int64_t model_version = 0;
  std::string id;
  bool has_id = false;
  std::vector<Tensor> outputs;  // the requested outputs, in request (or config) order
  std::vector<bool> binary;     // per output: send as binary data
};

}  // namespace berth
