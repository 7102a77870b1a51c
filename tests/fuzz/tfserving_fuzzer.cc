// TF Serving's REST predict bodies (row and columnar formats, b64 values,
// NaN/Infinity tokens) for a model with batched float, string and integer
// inputs; what decodes is encoded back in both answer formats.
#include <cstdlib>

#include "fuzz_util.h"
#include "protocol/http/tfserving_codec.h"

namespace {

const berth::ModelConfig& Config() {
  static const berth::ModelConfig config = [] {
    auto c = berth::ParseModelConfig(R"(backend: identity
max_batch_size: 8
inputs:
  - {name: x, datatype: FP32, shape: [3]}
  - {name: s, datatype: BYTES, shape: [-1]}
  - {name: i, datatype: INT64, shape: [-1, 2]}
outputs:
  - {name: out_x, datatype: FP32, shape: [3]}
)",
                                     "fuzz", "fuzz/model.yaml");
    if (!c.ok()) std::abort();
    return std::move(c).value();
  }();
  return config;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto decoded = berth::DecodeTfPredict(berth::fuzz::View(data, size), Config());
  if (!decoded.ok()) return 0;
  if (!decoded->request) __builtin_trap();
  berth::InferResponse response;
  response.model_name = "fuzz";
  response.outputs = decoded->request->inputs;  // as the identity backend answers
  response.binary.assign(response.outputs.size(), false);
  (void)berth::EncodeTfPredict(response, berth::TfFormat::kRow);
  (void)berth::EncodeTfPredict(response, berth::TfFormat::kColumnar);
  return 0;
}
