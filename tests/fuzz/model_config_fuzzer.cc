// model.yaml as the repository reads it (backend models and pipelines).
#include "common/model_config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = berth::fuzz::View(data, size);
  auto config = berth::ParsePartialModelConfig(text, "m", "m/model.yaml");
  if (!config.ok()) {
    // An error never quotes text from the file beyond what names the key.
    const std::string& m = config.status().message();
    if (m.size() > 4096) __builtin_trap();
  }
  return 0;
}
