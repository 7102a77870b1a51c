// Reads a model's inputs and outputs (names, element types, dims) straight
// from the ONNX protobuf, which OpenCV DNN does not expose. Only the few
// fields needed are decoded; everything else is skipped by wire type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "berth/status.h"

namespace berth {

struct OnnxDim {
  int64_t value = -1;  // -1: symbolic or unknown (dim_param)
};

struct OnnxValueInfo {
  std::string name;
  int32_t elem_type = 0;  // TensorProto.DataType: 1 FLOAT, 7 INT64, 11 DOUBLE, ...
  std::vector<OnnxDim> dims;
};

struct OnnxSignature {
  std::vector<OnnxValueInfo> inputs;  // graph inputs that are not initializers
  std::vector<OnnxValueInfo> outputs;
};

// Parses a serialized ModelProto. InvalidArgument names what is malformed.
Result<OnnxSignature> ParseOnnxSignature(std::string_view model_bytes);

}  // namespace berth
