#include "repository/model_loader.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "scheduler/instance_pool.h"
#include "transform/transform_instance.h"

namespace fs = std::filesystem;

namespace berth {
namespace {

// The backend a model file's name implies, for a model directory without model.yaml.
std::string BackendForFiles(const std::string& version_dir) {
  static const std::pair<const char*, const char*> kKnown[] = {
      {"model.pt", "torchscript"}, {"model.onnx", "onnx"}, {"model.json", "xgboost"}, {"model.ubj", "xgboost"}};
  std::error_code ec;
  for (const auto& [file, backend] : kKnown) {
    if (fs::is_regular_file(version_dir + "/" + file, ec)) return backend;
  }
  return "";
}

BackendTensorSpec ToBackendSpec(const TensorSpec& s) { return BackendTensorSpec{s.name, s.dtype, s.shape}; }

TensorSpec FromBackendSpec(const BackendTensorSpec& s) {
  TensorSpec t;
  t.name = s.name;
  t.dtype = s.dtype;
  t.shape = s.shape;
  return t;
}

// Picks `version` (-1 = the highest) among the versions on disk.
Result<int64_t> PickVersion(const ModelSource& source, int64_t version) {
  if (source.versions.empty()) {
    return NotFound(source.dir + ": no version directories (expected " + source.dir + "/1/)");
  }
  if (version < 0) return source.versions.rbegin()->first;
  if (!source.versions.count(version)) return NotFound(source.dir + ": no version " + std::to_string(version));
  return version;
}

}  // namespace

Result<ResolvedModel> ResolveModel(const ModelSource& source, int64_t version, BackendRegistry* backends) {
  ResolvedModel m;
  ASSIGN_OR_RETURN(m.version, PickVersion(source, version));
  m.version_dir = source.version_dir(m.version);
  m.config = source.config;
  const std::string yaml_path = source.yaml_path();
  if (!source.yaml) {
    m.config.backend = BackendForFiles(m.version_dir);
    if (m.config.backend.empty()) {
      return NotFound(yaml_path + ": missing, and " + m.version_dir +
                      " holds no model.pt, model.onnx, model.json or model.ubj to tell the backend");
    }
  }
  ASSIGN_OR_RETURN(m.backend, backends->Get(m.config.backend));
  const BackendPlugin& plugin = *m.backend->plugin;
  std::error_code ec;
  if (plugin.model_file && *plugin.model_file) {
    // model_file lists accepted names, comma-separated, in order of preference.
    std::string names = plugin.model_file;
    for (size_t start = 0; start <= names.size();) {
      size_t comma = std::min(names.find(',', start), names.size());
      std::string candidate = m.version_dir + "/" + names.substr(start, comma - start);
      if (fs::is_regular_file(candidate, ec)) {
        m.model_file = candidate;
        break;
      }
      start = comma + 1;
    }
    if (m.model_file.empty()) {
      return NotFound(m.version_dir + ": no model file (backend '" + m.config.backend + "' expects " +
                      (names.find(',') == std::string::npos ? names : "one of " + names) + ")");
    }
    if (!StaysInside(source.dir, m.model_file)) {
      return FailedPrecondition(m.model_file + ": resolves outside the model directory; refused");
    }
  }
  if (m.config.inputs.empty() && m.config.outputs.empty()) {
    // model.yaml leaves the signature out: ask the backend what the file says.
    BackendSignature signature;
    signature.max_batch_size = m.config.max_batch_size;
    Status s = m.backend->backend->InferSignature(m.model_file, &signature);
    if (!s.ok()) {
      return InvalidArgument(yaml_path + ": inputs and outputs: missing, and the " + m.config.backend +
                             " backend cannot infer them: " + s.message());
    }
    m.config.max_batch_size = signature.max_batch_size;
    for (const auto& spec : signature.inputs) m.config.inputs.push_back(FromBackendSpec(spec));
    for (const auto& spec : signature.outputs) m.config.outputs.push_back(FromBackendSpec(spec));
    m.inferred = true;
    for (const TensorSpec& in : m.config.inputs) {  // as ParseModelConfig does for declared inputs
      if (in.dtype == DataType::kBytes && !m.config.warmup_set) m.config.warmup_requests = 0;
    }
  }
  if (m.config.outputs.empty()) return InvalidArgument(yaml_path + ": outputs: expected at least one output");
  return m;
}

BackendModelConfig ToBackendConfig(const ResolvedModel& m, int instance_index) {
  BackendModelConfig b;
  b.name = m.config.name;
  b.max_batch_size = m.config.max_batch_size;
  for (const auto& s : m.config.inputs) b.inputs.push_back(ToBackendSpec(s));
  for (const auto& s : m.config.outputs) b.outputs.push_back(ToBackendSpec(s));
  b.threads = m.config.threads;
  b.parameters = m.config.parameters;
  b.version_dir = m.version_dir;
  b.model_dir = fs::path(m.version_dir).parent_path().string();
  b.model_file = m.model_file;
  b.version = m.version;
  b.instance_index = instance_index;
  return b;
}

ModelLoader::ModelLoader(Options options) : options_(std::move(options)) {
  RegisterKind(kBackendModelKind,
               [this](const ModelSource& source, int64_t version, std::shared_ptr<ModelMetrics> metrics) {
                 return LoadBackendModel(source, version, std::move(metrics));
               });
  RegisterKind(kTransformModelKind, [this](const ModelSource& source, int64_t version,
                                           std::shared_ptr<ModelMetrics> metrics) {
    return BuildPool(source.config, version, std::move(metrics), [&](int) -> Result<std::unique_ptr<ModelInstance>> {
      ASSIGN_OR_RETURN(std::unique_ptr<TransformInstance> t, TransformInstance::Create(source.config));
      return std::unique_ptr<ModelInstance>(std::move(t));
    });
  });
}

void ModelLoader::RegisterKind(const std::string& kind, SchedulerFactory factory) { kinds_[kind] = std::move(factory); }

Result<ModelLoader::Built> ModelLoader::LoadBackendModel(const ModelSource& source, int64_t version,
                                                         std::shared_ptr<ModelMetrics> metrics) const {
  ASSIGN_OR_RETURN(ResolvedModel resolved, ResolveModel(source, version, options_.backends));
  Backend* backend = resolved.backend->backend.get();
  return BuildPool(resolved.config, resolved.version, std::move(metrics),
                   [&](int i) -> Result<std::unique_ptr<ModelInstance>> {
                     try {
                       return backend->CreateInstance(ToBackendConfig(resolved, i));
                     } catch (const std::exception& e) {
                       return Internal(std::string("backend threw: ") + e.what());
                     } catch (...) {
                       return Internal("backend threw an exception");
                     }
                   });
}

Result<ModelLoader::Built> ModelLoader::BuildPool(ModelConfig config, int64_t version,
                                                  std::shared_ptr<ModelMetrics> metrics,
                                                  const MakeInstance& make_instance) const {
  InstancePool::Options pool;
  pool.version = version;
  pool.metrics = std::move(metrics);
  pool.inline_max_us = options_.inline_max_us;
  pool.execution_timeout_ms =
      config.execution_timeout_ms >= 0 ? config.execution_timeout_ms : options_.execution_timeout_ms;
  for (int i = 0; i < config.instances; ++i) {
    Result<std::unique_ptr<ModelInstance>> instance = make_instance(i);
    if (!instance.ok()) return instance.status();
    pool.instances.push_back(std::move(instance).value());
  }
  Built built;
  built.config = std::make_shared<const ModelConfig>(std::move(config));
  pool.config = built.config;
  ASSIGN_OR_RETURN(built.scheduler, InstancePool::Create(std::move(pool)));
  return built;
}

Result<std::shared_ptr<ModelVersion>> ModelLoader::Load(const ModelSource& source, int64_t version) const {
  ASSIGN_OR_RETURN(version, PickVersion(source, version));
  auto it = kinds_.find(source.config.kind);
  if (it == kinds_.end()) {
    return InvalidArgument(source.yaml_path() + ": kind: no loader for this kind of model");
  }
  auto mv = std::make_shared<ModelVersion>();
  mv->name = source.name;
  mv->version = version;
  mv->metrics = std::make_shared<ModelMetrics>();
  const bool labelled = std::any_of(source.config.outputs.begin(), source.config.outputs.end(),
                                    [](const TensorSpec& o) { return !o.labels_file.empty(); });
  std::optional<ModelSource> with_labels;
  if (labelled) {
    with_labels = source;
    Status read = ReadOutputLabels(source.dir, source.yaml_path(), &with_labels->config);
    if (!read.ok()) return read.WithContext("model '" + source.name + "' version " + std::to_string(version));
  }
  Result<Built> built = it->second(labelled ? *with_labels : source, version, mv->metrics);
  if (!built.ok()) {
    return built.status().WithContext("model '" + source.name + "' version " + std::to_string(version));
  }
  mv->config = std::move(built->config);
  mv->scheduler = std::move(built->scheduler);
  if (options_.warmup && mv->config->warmup_requests > 0) {
    Status warm = options_.warmup(mv);
    if (!warm.ok()) {
      mv->scheduler->Stop();
      return warm;
    }
  }
  return mv;
}

}  // namespace berth
