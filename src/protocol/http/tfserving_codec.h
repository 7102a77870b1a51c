// TensorFlow Serving's REST API bodies (tensorflow.org/tfx/serving/api_rest)
// <-> berth's requests: the row format ({"instances": [...]}, answered with
// "predictions") and the columnar format ({"inputs": ...}, answered with
// "outputs"); tensors in their natural nesting, {"b64": "..."} for binary
// values, NaN / Infinity / -Infinity tokens for floats.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "berth/status.h"
#include "common/model_config.h"
#include "request/infer_request.h"

namespace berth {

enum class TfFormat { kRow, kColumnar };

struct TfPredictRequest {
  std::unique_ptr<InferRequest> request;
  TfFormat format = TfFormat::kRow;
};

// Decodes a :predict body for `config` (which gives the datatypes: JSON does
// not). InvalidArgument names the input and what is wrong.
Result<TfPredictRequest> DecodeTfPredict(std::string_view body, const ModelConfig& config);

// {"predictions": ...} or {"outputs": ...}. InvalidArgument when the row
// format cannot hold the outputs (they do not share their 0-th dimension).
Result<std::string> EncodeTfPredict(const InferResponse& response, TfFormat format);

// TF Serving's DataType names: DT_FLOAT, DT_STRING (BYTES), ...
std::string_view TfTypeName(DataType dtype);

}  // namespace berth
