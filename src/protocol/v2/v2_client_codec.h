// The client side of the Open Inference Protocol v2 codec, beside the server
// side (v2_codec.h): what `berth bench` and remote pipeline steps send and
// read back. The same JSON tensors and binary tensor extension.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/status.h"
#include "request/infer_request.h"

namespace berth {

struct EncodedRequest {
  std::string body;                   // JSON, followed by binary inputs if any
  std::optional<size_t> json_length;  // set when binary inputs follow: Inference-Header-Content-Length
};

// Encodes `request`'s inputs (and requested outputs). `binary`: inputs go as
// binary data after the JSON (binary_data_size) and binary outputs are asked
// for; otherwise every input is JSON `data`.
EncodedRequest EncodeInferRequest(const InferRequest& request, bool binary);

// Decodes an infer response body (JSON, or with `json_length` the binary
// tensor extension). Errors name what is wrong and where.
Result<InferResponse> DecodeInferResponse(std::string_view body, std::optional<uint64_t> json_length);

// A model's metadata as GET /v2/models/{m} answers it.
struct V2TensorMetadata {
  std::string name;
  DataType dtype = DataType::kFp32;
  std::vector<int64_t> shape;  // -1 for any size; a leading -1 on a batched model
};
struct V2ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;
  std::vector<V2TensorMetadata> inputs;
  std::vector<V2TensorMetadata> outputs;
};
Result<V2ModelMetadata> DecodeModelMetadata(std::string_view body);

}  // namespace berth
