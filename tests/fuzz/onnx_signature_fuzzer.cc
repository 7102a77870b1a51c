// The ONNX protobuf reader that infers a model's signature.
#include "fuzz_util.h"
#include "onnx_signature.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)berth::ParseOnnxSignature(berth::fuzz::View(data, size));
  return 0;
}
