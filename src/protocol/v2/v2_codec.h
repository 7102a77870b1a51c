// The Open Inference Protocol v2 request/response codec: JSON tensors and the
// binary tensor data extension.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/status.h"
#include "request/infer_request.h"

namespace berth {

// Decodes an infer request body. When `json_length` is set (the
// Inference-Header-Content-Length header), the first json_length bytes are
// JSON and the rest is binary tensor data for the inputs that carry
// parameters.binary_data_size, in order. Errors say what is wrong and where,
// e.g. "inputs[0] ('x'): data[3]: expected a number for FP32, got a string".
// Shapes and counts are checked here; the model's config is checked by
// ValidateRequest (validate.h).
Result<InferRequest> DecodeInferRequest(std::string_view body, std::optional<uint64_t> json_length);

struct EncodedResponse {
  std::string body;                   // JSON, followed by binary outputs if any
  std::optional<size_t> json_length;  // set when binary outputs follow the JSON
};

EncodedResponse EncodeInferResponse(const InferResponse& response);

// The extensions of the v2 protocol berth implements (GET /v2, gRPC ServerMetadata).
const std::vector<std::string>& V2Extensions();

// Triton's model-configuration name of a datatype: TYPE_FP32, ..., TYPE_STRING for BYTES.
std::string_view TritonTypeName(DataType dtype);

}  // namespace berth
