#include "repository/model_repository.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <future>

#include "common/file_util.h"
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

std::vector<int64_t> SelectVersions(const VersionPolicy& p, const std::vector<int64_t>& on_disk) {
  switch (p.kind) {
    case VersionPolicy::Kind::kAll: return on_disk;
    case VersionPolicy::Kind::kLatest: {
      size_t n = std::min(on_disk.size(), static_cast<size_t>(p.latest));
      return std::vector<int64_t>(on_disk.end() - static_cast<std::ptrdiff_t>(n), on_disk.end());
    }
    case VersionPolicy::Kind::kSpecific: {
      std::vector<int64_t> out;
      for (int64_t v : p.specific) {
        if (std::binary_search(on_disk.begin(), on_disk.end(), v)) out.push_back(v);
      }
      std::sort(out.begin(), out.end());
      return out;
    }
  }
  return {};
}

// Names, sizes and modification times of every file under `dir`: changes when the version's files change.
std::string Fingerprint(const fs::path& dir) {
  std::vector<std::string> parts;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    auto mtime = fs::last_write_time(it->path(), ec).time_since_epoch().count();
    parts.push_back(it->path().lexically_relative(dir).string() + ":" + std::to_string(it->file_size(ec)) + ":" +
                    std::to_string(mtime));
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const auto& p : parts) out += p + "\n";
  return out;
}

// model.yaml is small; a larger one is refused before it is read.
constexpr uint64_t kMaxModelYamlBytes = 1 << 20;

// The model.yaml of `model_dir`, or nullopt when there is none. It is held to
// the rule for every file of a model: it must resolve inside the model
// directory (a link out of the repository is refused, never opened) and be a
// regular file of bounded size (a FIFO or a device is refused unopened).
Result<std::optional<std::string>> ReadModelYaml(const fs::path& model_dir) {
  fs::path path = model_dir / "model.yaml";
  std::error_code ec;
  fs::file_status link = fs::symlink_status(path, ec);
  if (link.type() == fs::file_type::not_found) return std::optional<std::string>();
  if (ec) return FailedPrecondition(path.string() + ": cannot be read: " + ec.message());
  if (!StaysInside(model_dir, path)) {
    return FailedPrecondition(path.string() + ": resolves outside the model directory; refused");
  }
  ASSIGN_OR_RETURN(std::string text, ReadRegularFile(path.string(), kMaxModelYamlBytes));
  return std::optional<std::string>(std::move(text));
}

// Runs `n` synthetic requests (zeros, batch 1, -1 dims as 1) before the version serves.
Status WarmUp(const ModelConfig& c, Scheduler& scheduler, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    auto request = std::make_unique<InferRequest>();
    for (const TensorSpec& spec : c.inputs) {
      Tensor t;
      t.name = spec.name;
      t.dtype = spec.dtype;
      t.shape = c.FullShape(spec);
      for (int64_t& d : t.shape) d = d < 0 ? 1 : d;
      int64_t count = t.NumElements();
      if (spec.dtype == DataType::kBytes) {
        for (int64_t k = 0; k < count; ++k) AppendBytesElement("", &t.data);
      } else {
        t.data.assign(static_cast<size_t>(count) * DataTypeSize(spec.dtype), 0);
      }
      request->inputs.push_back(std::move(t));
    }
    std::promise<Result<InferResponse>> done;
    auto future = done.get_future();
    scheduler.Enqueue(std::move(request), [&done](Result<InferResponse> r) { done.set_value(std::move(r)); });
    Result<InferResponse> r = future.get();
    if (!r.ok()) return r.status().WithContext("warm-up request " + std::to_string(i + 1));
  }
  return Status::Ok();
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

ModelState ModelEntry::State() const {
  if (versions.empty() && reason.empty()) return ModelState::kLoading;  // discovered, not loaded yet
  bool loading = false;
  for (const auto& [v, slot] : versions) {
    if (slot.loaded) return ModelState::kReady;
    loading |= slot.state == ModelState::kLoading;
  }
  return loading ? ModelState::kLoading : ModelState::kUnavailable;
}

std::vector<int64_t> ModelEntry::ReadyVersions() const {
  std::vector<int64_t> out;
  for (const auto& [v, slot] : versions) {
    if (slot.loaded) out.push_back(v);
  }
  return out;
}

bool IsValidModelName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

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

}  // namespace

Result<ResolvedModel> ResolveModel(const std::string& model_dir, const std::string& name, int64_t version,
                                   BackendRegistry* backends) {
  std::vector<int64_t> versions = ListVersions(model_dir);
  if (versions.empty()) {
    return NotFound(model_dir + ": no version directories (expected " + model_dir + "/1/)");
  }
  if (version < 0) {
    version = versions.back();
  } else if (!std::binary_search(versions.begin(), versions.end(), version)) {
    return NotFound(model_dir + ": no version " + std::to_string(version));
  }
  ResolvedModel m;
  m.version = version;
  m.version_dir = model_dir + "/" + std::to_string(version);
  std::string yaml_path = model_dir + "/model.yaml";
  std::error_code ec;
  ASSIGN_OR_RETURN(std::optional<std::string> text, ReadModelYaml(model_dir));
  if (text) {
    ASSIGN_OR_RETURN(m.config, ParsePartialModelConfig(*text, name, yaml_path));
  } else {
    m.config.name = name;
    m.config.backend = BackendForFiles(m.version_dir);
    if (m.config.backend.empty()) {
      return NotFound(yaml_path + ": missing, and " + m.version_dir +
                      " holds no model.pt, model.onnx, model.json or model.ubj to tell the backend");
    }
  }
  ASSIGN_OR_RETURN(m.backend, backends->Get(m.config.backend));
  const BackendPlugin& plugin = *m.backend->plugin;
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
    if (!StaysInside(model_dir, m.model_file)) {
      return FailedPrecondition(m.model_file + ": resolves outside the model directory; refused");
    }
  }
  if (m.config.inputs.empty() && m.config.outputs.empty()) {
    // model.yaml leaves the signature out: ask the backend what the file says (API 1.1).
    Status s = plugin.api_minor >= 1 ? m.backend->backend->InferConfig(m.model_file, &m.config)
                                     : Unimplemented("plugin predates backend API 1.1");
    if (!s.ok()) {
      return InvalidArgument(yaml_path + ": inputs and outputs: missing, and the " + m.config.backend +
                             " backend cannot infer them: " + s.message());
    }
    m.inferred = true;
  }
  if (m.config.outputs.empty()) return InvalidArgument(yaml_path + ": outputs: expected at least one output");
  return m;
}

Result<std::shared_ptr<ModelVersion>> LoadModelVersion(const std::string& model_dir, const std::string& name,
                                                       int64_t version, BackendRegistry* backends,
                                                       int64_t inline_max_us) {
  ASSIGN_OR_RETURN(ResolvedModel resolved, ResolveModel(model_dir, name, version, backends));
  version = resolved.version;
  LoadedBackend* backend = resolved.backend;
  ModelConfig config = std::move(resolved.config);
  InstanceContext ctx;
  ctx.version = version;
  ctx.version_dir = resolved.version_dir;
  ctx.model_file = resolved.model_file;
  auto shared_config = std::make_shared<const ModelConfig>(std::move(config));
  ctx.config = shared_config.get();

  InstancePool::Options pool;
  pool.config = shared_config;
  pool.version = version;
  pool.metrics = std::make_shared<ModelMetrics>();
  pool.inline_max_us = inline_max_us;
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
  RETURN_IF_ERROR(WarmUp(*shared_config, *mv->scheduler, shared_config->warmup_requests));
  return mv;
}

Result<std::unique_ptr<ModelRepository>> ModelRepository::Create(const Options& options) {
  std::error_code ec;
  if (!fs::is_directory(options.root, ec)) {
    return NotFound("model repository " + options.root + " is not a readable directory");
  }
  return std::unique_ptr<ModelRepository>(new ModelRepository(options));
}

ModelRepository::ModelRepository(Options options) : options_(std::move(options)), backends_(options_.backend_dir) {
  // Reasons reach clients (index, metadata, infer errors): they name files
  // relative to the repository and plugins by file name, never where the
  // server keeps them. The log keeps the full paths.
  for (const std::string& dir : {options_.root, options_.backend_dir}) {
    if (dir.empty()) continue;
    std::error_code ec;
    for (fs::path p : {fs::absolute(dir, ec).lexically_normal(), fs::weakly_canonical(dir, ec), fs::path(dir)}) {
      std::string prefix = p.string();
      while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
      if (!prefix.empty()) server_paths_.push_back(prefix + "/");
    }
  }
  // Longest first, so that a path inside another is cut whole.
  std::sort(server_paths_.begin(), server_paths_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

Status ModelRepository::Public(const Status& s) const {
  std::string m = s.message();
  for (const std::string& prefix : server_paths_) {
    for (size_t at = m.find(prefix); at != std::string::npos; at = m.find(prefix, at)) m.erase(at, prefix.size());
  }
  return Status(s.code(), std::move(m));
}

ModelRepository::~ModelRepository() { StopAll(); }

void ModelRepository::Retire(std::shared_ptr<ModelVersion> version) {
  if (version) retired_.push_back(std::move(version));
}

void ModelRepository::ReapRetired() {
  std::vector<std::shared_ptr<ModelVersion>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // use_count 1: only this list holds it, so no request is queued or in flight on it.
    auto idle = [](const std::shared_ptr<ModelVersion>& v) { return v.use_count() == 1; };
    for (auto& v : retired_) {
      if (idle(v)) done.push_back(std::move(v));
    }
    retired_.erase(std::remove(retired_.begin(), retired_.end(), nullptr), retired_.end());
  }
  for (auto& v : done) {
    v->scheduler->Stop();
    spdlog::info("model '{}' version {}: retired", v->name, v->version);
  }
}

Status ModelRepository::LoadModel(const std::string& name) {
  std::lock_guard<std::mutex> load_lock(load_mu_);
  // Refusals before anything loads: logged, and kept as the reason of a model the index already lists.
  auto refuse = [&](const Status& full) {
    spdlog::error("model '{}': {}", name, full.message());
    Status s = Public(full);
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = models_.find(name); it != models_.end()) it->second.reason = s.message();
    return s;
  };
  if (!IsValidModelName(name)) return refuse(InvalidArgument("'" + name + "' is not a valid model name"));
  fs::path dir = fs::path(options_.root) / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return refuse(NotFound("no model directory '" + name + "' in the repository"));
  if (!StaysInside(options_.root, dir)) {
    return refuse(FailedPrecondition(dir.string() + ": resolves outside the model repository; refused"));
  }
  auto record_model_error = [&](const Status& full) {
    Status s = Public(full);
    std::lock_guard<std::mutex> lock(mu_);
    ModelEntry& e = models_[name];
    e.name = name;
    e.reason = s.message();
    for (auto& [v, slot] : e.versions) {
      if (!slot.loaded) slot.state = ModelState::kUnavailable;
    }
    spdlog::error("model '{}': {}{}", name, full.message(),
                  e.ReadyVersions().empty() ? "" : " (the loaded versions keep serving)");
    return s;
  };
  std::string yaml_path = (dir / "model.yaml").string();
  Result<std::optional<std::string>> read = ReadModelYaml(dir);
  if (!read.ok()) return record_model_error(read.status());
  // No model.yaml: the backend infers the signature, the defaults apply.
  std::optional<std::string> yaml = read->value_or("");
  Result<ModelConfig> config =
      yaml->empty() ? Result<ModelConfig>(ModelConfig()) : ParsePartialModelConfig(*yaml, name, yaml_path);
  if (!config.ok()) return record_model_error(config.status());
  std::vector<int64_t> on_disk = ListVersions(dir);
  std::vector<int64_t> wanted = SelectVersions(config->version_policy, on_disk);
  if (wanted.empty()) {
    return record_model_error(
        NotFound(dir.string() + (on_disk.empty() ? ": no version directories (expected " + dir.string() + "/1/)"
                                                 : ": version_policy selects none of the versions on disk")));
  }

  Status first_error;
  for (int64_t v : wanted) {
    std::string fingerprint = *yaml + Fingerprint(dir / std::to_string(v));
    {
      std::lock_guard<std::mutex> lock(mu_);
      ModelEntry& e = models_[name];
      e.name = name;
      e.reason.clear();
      VersionSlot& slot = e.versions[v];
      if (slot.fingerprint == fingerprint && (slot.loaded || slot.state == ModelState::kUnavailable)) {
        // Unchanged files: no reload. A version that failed still reports why.
        if (!slot.reason.empty() && first_error.ok()) first_error = Unavailable(slot.reason);
        continue;
      }
      if (!slot.loaded) slot.state = ModelState::kLoading;
    }
    Result<std::shared_ptr<ModelVersion>> mv =
        LoadModelVersion(dir.string(), name, v, &backends_, options_.inline_max_us);
    std::lock_guard<std::mutex> lock(mu_);
    VersionSlot& slot = models_[name].versions[v];
    slot.fingerprint = fingerprint;
    if (mv.ok()) {
      Retire(std::move(slot.loaded));
      slot.loaded = *mv;
      slot.state = ModelState::kReady;
      slot.reason.clear();
      const ModelConfig& c = *(*mv)->config;
      spdlog::info("model '{}' version {}: READY (backend {}, max_batch_size {}, instances {}, threads {}{})", name, v,
                   c.backend, c.max_batch_size, c.instances, c.threads, c.dynamic_batching ? ", dynamic batching" : "");
      continue;
    }
    Status failed = Public(mv.status());
    if (first_error.ok()) first_error = failed;
    if (slot.loaded) {
      slot.reason = "reload failed, previous files still serving: " + failed.message();
      spdlog::error("model '{}' version {}: reload failed, previous files still serving: {}", name, v,
                    mv.status().message());
    } else {
      slot.state = ModelState::kUnavailable;
      slot.reason = failed.message();
      spdlog::error("model '{}' version {}: UNAVAILABLE: {}", name, v, mv.status().message());
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ModelEntry& e = models_[name];
  bool wanted_serving = std::any_of(wanted.begin(), wanted.end(), [&](int64_t v) {
    auto it = e.versions.find(v);
    return it != e.versions.end() && it->second.loaded;
  });
  if (!wanted_serving) {
    // Nothing the policy selects could load: keep whatever serves now rather than serve nothing.
    if (!e.ReadyVersions().empty()) {
      spdlog::warn("model '{}': no selected version loaded; versions already serving stay until one does", name);
    }
    return first_error;
  }
  for (auto it = e.versions.begin(); it != e.versions.end();) {
    if (std::binary_search(wanted.begin(), wanted.end(), it->first)) {
      ++it;
      continue;
    }
    spdlog::info("model '{}' version {}: no longer selected; retiring after in-flight requests", name, it->first);
    Retire(std::move(it->second.loaded));
    it = e.versions.erase(it);
  }
  return first_error;
}

Status ModelRepository::UnloadModel(const std::string& name) {
  std::lock_guard<std::mutex> load_lock(load_mu_);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return NotFound("unknown model '" + name + "'");
  for (auto& [v, slot] : it->second.versions) Retire(std::move(slot.loaded));
  it->second.versions.clear();
  it->second.reason = "unloaded";
  spdlog::info("model '{}': unloaded; retiring after in-flight requests", name);
  return Status::Ok();
}

void ModelRepository::LoadAll() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.root, ec)) {
    std::string name = e.path().filename().string();
    if (!e.is_directory(ec) || name[0] == '.') continue;
    if (!IsValidModelName(name)) {
      spdlog::warn("skipping '{}': model names are [A-Za-z0-9_.-]+", name);
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
  for (const auto& n : names) LoadModel(n);
}

void ModelRepository::Poll() {
  std::vector<std::string> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, e] : models_) {
      std::error_code ec;
      if (!fs::is_directory(fs::path(options_.root) / name, ec)) gone.push_back(name);
    }
  }
  for (const auto& name : gone) {
    UnloadModel(name);
    std::lock_guard<std::mutex> lock(mu_);
    models_.erase(name);
  }
  LoadAll();
}

void ModelRepository::StartBackground(int poll_secs) {
  background_ = std::thread([this, poll_secs] { BackgroundLoop(poll_secs); });
}

void ModelRepository::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(bg_mu_);
    tasks_.push_back(std::move(task));
  }
  bg_cv_.notify_all();
}

void ModelRepository::BackgroundLoop(int poll_secs) {
  auto next_poll = std::chrono::steady_clock::now() + std::chrono::seconds(poll_secs);
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(bg_mu_);
      bg_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return bg_stop_ || !tasks_.empty(); });
      if (bg_stop_) return;
      if (!tasks_.empty()) {
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
    }
    if (task) task();
    if (poll_secs > 0 && std::chrono::steady_clock::now() >= next_poll) {
      Poll();
      next_poll = std::chrono::steady_clock::now() + std::chrono::seconds(poll_secs);
    }
    ReapRetired();
  }
}

Result<std::shared_ptr<ModelVersion>> ModelRepository::Get(std::string_view name, int64_t version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return NotFound("unknown model '" + std::string(name) + "'");
  const ModelEntry& e = it->second;
  if (version < 0) {
    for (auto v = e.versions.rbegin(); v != e.versions.rend(); ++v) {
      if (v->second.loaded) return v->second.loaded;
    }
    if (e.State() == ModelState::kLoading) return Unavailable("model '" + e.name + "' is still loading");
    std::string reason = e.reason;
    for (const auto& [v, slot] : e.versions) {
      if (reason.empty()) reason = slot.reason;
    }
    return Unavailable("model '" + e.name + "' is unavailable: " + (reason.empty() ? "not loaded" : reason));
  }
  auto v = e.versions.find(version);
  if (v == e.versions.end()) {
    if (e.State() != ModelState::kReady && !e.reason.empty()) {
      return Unavailable("model '" + e.name + "' is unavailable: " + e.reason);
    }
    return NotFound("model '" + e.name + "' has no version " + std::to_string(version) + " loaded");
  }
  if (!v->second.loaded) {
    return Unavailable(
        "model '" + e.name + "' version " + std::to_string(version) + " is " +
        (v->second.state == ModelState::kLoading ? "still loading" : "unavailable: " + v->second.reason));
  }
  return v->second.loaded;
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
    if (e.versions.empty()) {
      out.push_back({name, "", e.State(), e.reason});
      continue;
    }
    for (const auto& [v, slot] : e.versions) {
      ModelState state = slot.loaded ? ModelState::kReady : slot.state;
      out.push_back({name, std::to_string(v), state, slot.reason.empty() ? e.reason : slot.reason});
    }
  }
  return out;
}

std::vector<std::shared_ptr<ModelVersion>> ModelRepository::LoadedVersions() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<ModelVersion>> out;
  for (const auto& [name, e] : models_) {
    for (const auto& [v, slot] : e.versions) {
      if (slot.loaded) out.push_back(slot.loaded);
    }
  }
  return out;
}

void ModelRepository::StopAll() {
  {
    std::lock_guard<std::mutex> lock(bg_mu_);
    bg_stop_ = true;
  }
  bg_cv_.notify_all();
  if (background_.joinable()) background_.join();
  std::vector<std::shared_ptr<ModelVersion>> all = LoadedVersions();
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.insert(all.end(), retired_.begin(), retired_.end());
  }
  for (auto& mv : all) mv->scheduler->Stop();
}

}  // namespace berth
