// model.yaml as the repository reads it (backend models, pipelines and
// transforms); a transform that parses is also built and run on one row of
// empty values.
#include "common/model_config.h"
#include "fuzz_util.h"
#include "transform/transform_instance.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = berth::fuzz::View(data, size);
  auto config = berth::ParsePartialModelConfig(text, "m", "m/model.yaml");
  if (!config.ok()) {
    // An error never quotes text from the file beyond what names the key.
    const std::string& m = config.status().message();
    if (m.size() > 4096) __builtin_trap();
    return 0;
  }
  if (config->kind != berth::kTransformModelKind) return 0;
  auto transform = berth::TransformInstance::Create(*config);
  if (!transform.ok()) {
    if (transform.status().message().size() > 4096) __builtin_trap();
    return 0;
  }
  std::vector<berth::Tensor> inputs;
  for (const berth::TensorSpec& in : config->inputs) {
    berth::Tensor t{in.name, in.dtype, {1}, {}};
    if (config->batched()) t.shape.insert(t.shape.begin(), 1);
    if (in.dtype == berth::DataType::kBytes) {
      berth::AppendBytesElement("", &t.data);
    } else {
      t.data.assign(berth::DataTypeSize(in.dtype), 0);
    }
    inputs.push_back(std::move(t));
  }
  std::vector<berth::Tensor> outputs;
  (void)(*transform)->Execute(inputs, &outputs);
  return 0;
}
