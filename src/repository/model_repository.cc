#include "repository/model_repository.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "scheduler/instance_pool.h"

namespace fs = std::filesystem;

namespace berth {
namespace {

// True if `path` resolves to a location inside `root` (both canonicalised).
bool StaysInside(const fs::path& root, const fs::path& path) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(root, ec);
  if (ec) return false;
  fs::path p = fs::weakly_canonical(path, ec);
  if (ec) return false;
  auto [ri, pi] = std::mismatch(r.begin(), r.end(), p.begin(), p.end());
  return ri == r.end();
}

// Integer version directories under `model_dir`, ascending.
std::vector<int64_t> ListVersions(const fs::path& model_dir) {
  std::vector<int64_t> versions;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(model_dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.empty() || n.size() > 18 || n[0] == '0' ||
        !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    if (!e.is_directory(ec) || !StaysInside(model_dir, e.path())) continue;
    versions.push_back(std::stoll(n));
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

}  // namespace

std::string_view ModelStateName(ModelState state) {
  switch (state) {
    case ModelState::kLoading: return "LOADING";
    case ModelState::kReady: return "READY";
    case ModelState::kUnavailable: return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

bool IsValidModelName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

Result<std::shared_ptr<ModelVersion>> LoadModelVersion(const std::string& model_dir, const std::string& name,
                                                       int64_t version, BackendRegistry* backends) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir + "/model.yaml", name));
  std::vector<int64_t> versions = ListVersions(model_dir);
  if (versions.empty()) {
    return NotFound(model_dir + ": no version directories (expected " + model_dir + "/1/)");
  }
  if (version < 0) {
    version = versions.back();
  } else if (!std::binary_search(versions.begin(), versions.end(), version)) {
    return NotFound(model_dir + ": no version " + std::to_string(version));
  }
  ASSIGN_OR_RETURN(LoadedBackend * backend, backends->Get(config.backend));

  InstanceContext ctx;
  ctx.version = version;
  ctx.version_dir = model_dir + "/" + std::to_string(version);
  if (backend->plugin->model_file && *backend->plugin->model_file) {
    // model_file lists accepted names, comma-separated, in order of preference.
    std::string names = backend->plugin->model_file;
    std::error_code ec;
    for (size_t start = 0; start <= names.size();) {
      size_t comma = std::min(names.find(',', start), names.size());
      std::string candidate = ctx.version_dir + "/" + names.substr(start, comma - start);
      if (fs::is_regular_file(candidate, ec)) {
        ctx.model_file = candidate;
        break;
      }
      start = comma + 1;
    }
    if (ctx.model_file.empty()) {
      return NotFound(ctx.version_dir + ": no model file (backend '" + config.backend + "' expects " +
                      (names.find(',') == std::string::npos ? names : "one of " + names) + ")");
    }
    if (!StaysInside(model_dir, ctx.model_file)) {
      return FailedPrecondition(ctx.model_file + ": resolves outside the model directory; refused");
    }
  }
  auto shared_config = std::make_shared<const ModelConfig>(std::move(config));
  ctx.config = shared_config.get();

  InstancePool::Options pool;
  pool.config = shared_config;
  pool.version = version;
  pool.metrics = std::make_shared<ModelMetrics>();
  for (int i = 0; i < shared_config->instances; ++i) {
    ctx.instance_index = i;
    Result<std::unique_ptr<ModelInstance>> instance = Internal("backend threw an exception");
    try {
      instance = backend->backend->CreateInstance(ctx);
    } catch (const std::exception& e) {
      instance = Internal(std::string("backend threw: ") + e.what());
    }
    if (!instance.ok()) return instance.status().WithContext("model '" + name + "' version " + std::to_string(version));
    pool.instances.push_back(std::move(instance).value());
  }
  auto mv = std::make_shared<ModelVersion>();
  mv->name = name;
  mv->version = version;
  mv->config = shared_config;
  mv->metrics = pool.metrics;
  ASSIGN_OR_RETURN(mv->scheduler, InstancePool::Create(std::move(pool)));
  return mv;
}

Result<std::unique_ptr<ModelRepository>> ModelRepository::Create(const Options& options) {
  std::error_code ec;
  if (!fs::is_directory(options.root, ec)) {
    return NotFound("model repository " + options.root + " is not a readable directory");
  }
  return std::unique_ptr<ModelRepository>(new ModelRepository(options));
}

ModelRepository::ModelRepository(Options options) : options_(std::move(options)), backends_(options_.backend_dir) {}

ModelRepository::~ModelRepository() { StopAll(); }

ModelEntry ModelRepository::LoadOne(const std::string& name) {
  ModelEntry entry;
  entry.name = name;
  fs::path dir = fs::path(options_.root) / name;
  Result<std::shared_ptr<ModelVersion>> mv = NotFound("");
  if (!StaysInside(options_.root, dir)) {
    mv = FailedPrecondition(dir.string() + ": resolves outside the model repository; refused");
  } else {
    mv = LoadModelVersion(dir.string(), name, -1, &backends_);
  }
  if (!mv.ok()) {
    entry.state = ModelState::kUnavailable;
    entry.reason = mv.status().message();
    spdlog::error("model '{}': UNAVAILABLE: {}", name, entry.reason);
    if (auto config = LoadModelConfig(dir.string() + "/model.yaml", name); config.ok()) {
      entry.config = std::make_shared<const ModelConfig>(std::move(config).value());
    }
    return entry;
  }
  entry.state = ModelState::kReady;
  entry.config = (*mv)->config;
  entry.versions.push_back((*mv)->version);
  entry.loaded[(*mv)->version] = *mv;
  const ModelConfig& c = *entry.config;
  spdlog::info("model '{}' version {}: READY (backend {}, max_batch_size {}, instances {}, threads {})", name,
               (*mv)->version, c.backend, c.max_batch_size, c.instances, c.threads);
  return entry;
}

void ModelRepository::LoadAll() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.root, ec)) {
    std::string name = e.path().filename().string();
    if (!e.is_directory(ec)) continue;
    if (!IsValidModelName(name) || name[0] == '.') {
      if (name[0] != '.') spdlog::warn("skipping '{}': model names are [A-Za-z0-9_.-]+", name);
      continue;
    }
    names.push_back(name);
  }
  if (ec) spdlog::error("reading model repository {}: {}", options_.root, ec.message());
  std::sort(names.begin(), names.end());
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& n : names) models_[n].name = n;
  }
  for (const auto& n : names) {
    ModelEntry entry = LoadOne(n);
    std::lock_guard<std::mutex> lock(mu_);
    models_[n] = std::move(entry);
  }
  loaded_ = true;
}

Result<std::shared_ptr<ModelVersion>> ModelRepository::Get(std::string_view name, int64_t version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return NotFound("unknown model '" + std::string(name) + "'");
  const ModelEntry& e = it->second;
  if (e.state == ModelState::kLoading) return Unavailable("model '" + e.name + "' is still loading");
  if (e.state == ModelState::kUnavailable) return Unavailable("model '" + e.name + "' is unavailable: " + e.reason);
  if (version < 0) return e.loaded.rbegin()->second;
  auto v = e.loaded.find(version);
  if (v == e.loaded.end()) {
    return NotFound("model '" + e.name + "' has no version " + std::to_string(version) + " loaded");
  }
  return v->second;
}

Result<ModelEntry> ModelRepository::Entry(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return NotFound("unknown model '" + std::string(name) + "'");
  return it->second;
}

std::vector<IndexEntry> ModelRepository::Index() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<IndexEntry> out;
  for (const auto& [name, e] : models_) {
    if (e.loaded.empty()) {
      out.push_back({name, "", e.state, e.reason});
    } else {
      for (const auto& [v, mv] : e.loaded) out.push_back({name, std::to_string(v), e.state, e.reason});
    }
  }
  return out;
}

std::vector<std::shared_ptr<ModelVersion>> ModelRepository::LoadedVersions() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<ModelVersion>> out;
  for (const auto& [name, e] : models_) {
    for (const auto& [v, mv] : e.loaded) out.push_back(mv);
  }
  return out;
}

void ModelRepository::StopAll() {
  for (auto& mv : LoadedVersions()) {
    if (mv->scheduler) mv->scheduler->Stop();
  }
}

}  // namespace berth
