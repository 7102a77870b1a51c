// The v2 infer request decoder: JSON tensors and the binary tensor extension,
// as a request body reaches it. The first byte picks whether a JSON length
// (Inference-Header-Content-Length) is given, and the next two how long.
#include "fuzz_util.h"
#include "protocol/v2/v2_client_codec.h"
#include "protocol/v2/v2_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<uint64_t> json_length;
  if (size >= 3 && (data[0] & 1)) {
    json_length = (static_cast<uint64_t>(data[1]) << 8 | data[2]) % (size - 2);
    data += 3;
    size -= 3;
  }
  auto body = berth::fuzz::View(data, size);
  auto request = berth::DecodeInferRequest(body, json_length);
  if (request.ok()) {
    // What decodes encodes, and decodes again to the same tensors.
    berth::EncodedRequest again = berth::EncodeInferRequest(*request, (size & 1) != 0);
    auto back = berth::DecodeInferRequest(again.body, again.json_length);
    if (!back.ok() || back->inputs.size() != request->inputs.size()) __builtin_trap();
  }
  (void)berth::DecodeInferResponse(body, json_length);
  (void)berth::DecodeModelMetadata(body);
  return 0;
}
