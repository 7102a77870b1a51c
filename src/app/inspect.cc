// `berth inspect`: the signature berth would serve a model directory with,
// written as model.yaml (inferred from the model file where model.yaml
// leaves inputs and outputs out).
#include <filesystem>

#include "backend/backend_registry.h"
#include "berth/server.h"
#include "repository/model_loader.h"
#include "repository/model_source.h"

namespace berth {
namespace {

void WriteSpecs(std::string* out, const char* key, const std::vector<TensorSpec>& specs) {
  *out += key;
  *out += specs.empty() ? ": []\n" : ":\n";
  for (const TensorSpec& s : specs) {
    *out += "  - {name: " + s.name + ", datatype: " + std::string(DataTypeName(s.dtype)) + ", shape: [";
    for (size_t i = 0; i < s.shape.size(); ++i) *out += (i ? ", " : "") + std::to_string(s.shape[i]);
    *out += "]}\n";
  }
}

}  // namespace

Result<std::string> RunInspect(const InspectOptions& o) {
  std::filesystem::path dir = std::filesystem::path(o.model_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return NotFound(o.model_dir + ": not a model directory");
  BackendRegistry backends(o.backend_dir);
  ASSIGN_OR_RETURN(ModelSource source, ReadModelSource(dir.string(), dir.filename().string()));
  ASSIGN_OR_RETURN(ResolvedModel m, ResolveModel(source, o.version, &backends));
  const ModelConfig& c = m.config;
  std::string out = "# " + m.model_file + " (version " + std::to_string(m.version) + "): signature " +
                    (m.inferred ? "inferred from the model file" : "from model.yaml") + "\n";
  out += "backend: " + c.backend + "\n";
  out += "max_batch_size: " + std::to_string(c.max_batch_size) + "\n";
  WriteSpecs(&out, "inputs", c.inputs);
  WriteSpecs(&out, "outputs", c.outputs);
  out += "instances: " + std::to_string(c.instances) + "\n";
  out += "threads: " + std::to_string(c.threads);
  return out;
}

}  // namespace berth
