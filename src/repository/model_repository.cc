#include "repository/model_repository.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

#include "common/pipeline_spec.h"

namespace fs = std::filesystem;

namespace berth {

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

Result<std::unique_ptr<ModelRepository>> ModelRepository::Create(Options options) {
  std::error_code ec;
  if (!fs::is_directory(options.root, ec)) {
    return NotFound((options.single_model.empty() ? "model repository " : "model directory ") + options.root +
                    " is not a readable directory");
  }
  return std::unique_ptr<ModelRepository>(new ModelRepository(std::move(options)));
}

ModelRepository::ModelRepository(Options options)
    : options_(std::move(options)),
      backends_(options_.backend_dir),
      loader_(
          ModelLoader::Options{&backends_, options_.inline_max_us, options_.execution_timeout_ms, options_.warmup}) {
  // Reasons reach clients (index, metadata, infer errors): they name files
  // relative to the repository and plugins by file name, never where the
  // server keeps them. The log keeps the full paths.
  const std::string root =
      options_.single_model.empty() ? options_.root : fs::path(options_.root).parent_path().string();
  for (const std::string& dir : {root, backends_.dir()}) {
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

std::string ModelRepository::ModelDir(const std::string& name) const {
  return options_.single_model.empty() ? (fs::path(options_.root) / name).string() : options_.root;
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

Status ModelRepository::LoadModel(const std::string& name) { return LoadModel(name, std::nullopt); }

Status ModelRepository::LoadModel(const std::string& name, std::optional<Result<ModelSource>> read,
                                  bool only_if_retrying) {
  std::lock_guard<std::mutex> load_lock(load_mu_);
  if (only_if_retrying) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end() || !it->second.retry_load) return Status::Ok();
  }
  // Refusals before anything loads: logged, and kept as the reason of a model the index already lists.
  auto refuse = [&](const Status& full) {
    spdlog::error("model '{}': {}", name, full.message());
    Status s = Public(full);
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = models_.find(name); it != models_.end()) it->second.reason = s.message();
    return s;
  };
  if (!IsValidModelName(name)) return refuse(InvalidArgument("'" + name + "' is not a valid model name"));
  if (!options_.single_model.empty() && name != options_.single_model) {
    return refuse(NotFound("no model '" + name + "' here"));
  }
  const std::string dir = ModelDir(name);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return refuse(NotFound("no model directory '" + name + "' in the repository"));
  if (options_.single_model.empty() && !StaysInside(options_.root, dir)) {
    return refuse(FailedPrecondition(dir + ": resolves outside the model repository; refused"));
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
  // One read of the directory: model.yaml (opened and parsed once) and the versions on disk.
  Result<ModelSource> source = read ? std::move(*read) : ReadModelSource(dir, name);
  if (!source.ok()) return record_model_error(source.status());
  std::vector<int64_t> on_disk = source->version_numbers();
  std::vector<int64_t> wanted;
  if (!options_.version) {
    wanted = SelectVersions(source->config.version_policy, on_disk);
  } else if (*options_.version < 0) {
    if (!on_disk.empty()) wanted.push_back(on_disk.back());
  } else if (source->versions.count(*options_.version)) {
    wanted.push_back(*options_.version);
  } else if (!on_disk.empty()) {
    return record_model_error(NotFound(dir + ": no version " + std::to_string(*options_.version)));
  }
  if (wanted.empty()) {
    return record_model_error(
        NotFound(dir + (on_disk.empty() ? ": no version directories (expected " + dir + "/1/)"
                                        : ": version_policy selects none of the versions on disk")));
  }

  Status first_error;
  for (int64_t v : wanted) {
    const std::string& fingerprint = source->versions.at(v);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ModelEntry& e = models_[name];
      e.name = name;
      e.reason.clear();
      VersionSlot& slot = e.versions[v];
      // A pipeline that could not load is tried again (its step models may serve by now).
      bool retry = source->config.kind == kPipelineModelKind && !slot.loaded;
      if (slot.fingerprint == fingerprint && (slot.loaded || slot.state == ModelState::kUnavailable) && !retry) {
        // Unchanged files: no reload. A version that failed still reports why.
        if (!slot.reason.empty() && first_error.ok()) first_error = Unavailable(slot.reason);
        continue;
      }
      if (!slot.loaded) slot.state = ModelState::kLoading;
    }
    Result<std::shared_ptr<ModelVersion>> mv = loader_.Load(*source, v);
    std::lock_guard<std::mutex> lock(mu_);
    VersionSlot& slot = models_[name].versions[v];
    slot.fingerprint = fingerprint;
    if (mv.ok()) {
      Retire(std::move(slot.loaded));
      slot.loaded = *mv;
      slot.state = ModelState::kReady;
      slot.reason.clear();
      const ModelConfig& c = *(*mv)->config;
      if (c.pipeline) {
        spdlog::info("model '{}' version {}: READY (pipeline of {} steps, max_batch_size {})", name, v,
                     c.pipeline->steps.size(), c.max_batch_size);
      } else {
        spdlog::info("model '{}' version {}: READY (backend {}, max_batch_size {}, instances {}, threads {}{})", name,
                     v, c.backend, c.max_batch_size, c.instances, c.threads,
                     c.dynamic_batching ? ", dynamic batching" : "");
      }
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
  e.retry_load = source->config.kind == kPipelineModelKind && first_error.code() == StatusCode::kUnavailable;
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
  it->second.retry_load = false;
  spdlog::info("model '{}': unloaded; retiring after in-flight requests", name);
  return Status::Ok();
}

std::vector<std::string> ModelRepository::LoadOrder(const std::vector<std::string>& names,
                                                    const std::map<std::string, Result<ModelSource>>& sources) const {
  // The models each pipeline runs (from its model.yaml; a model.yaml that
  // does not read is reported by its own load).
  std::map<std::string, std::vector<std::string>> deps;
  for (const auto& [n, source] : sources) {
    if (!source.ok() || !source->config.pipeline) continue;
    for (const PipelineStep& step : source->config.pipeline->steps) deps[n].push_back(step.model);
  }
  std::vector<std::string> order;
  std::set<std::string> placed, visiting;
  std::function<void(const std::string&)> place = [&](const std::string& n) {
    if (placed.count(n) || visiting.count(n)) return;  // a cycle: its pipelines fail to load, saying why
    visiting.insert(n);
    auto it = deps.find(n);
    if (it != deps.end()) {
      for (const auto& d : it->second)
        if (std::binary_search(names.begin(), names.end(), d)) place(d);
    }
    visiting.erase(n);
    placed.insert(n);
    order.push_back(n);
  };
  for (const auto& n : names) place(n);
  return order;
}

void ModelRepository::LoadAll() {
  if (!options_.single_model.empty()) {
    (void)LoadModel(options_.single_model);  // recorded for the index
    return;
  }
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
  // Each model.yaml is read once: here, for the order (pipelines after the models they run), and the load uses it.
  std::map<std::string, Result<ModelSource>> sources;
  for (const auto& n : names) sources.emplace(n, ReadModelSource(ModelDir(n), n));
  for (const auto& n : LoadOrder(names, sources)) {
    (void)LoadModel(n, std::move(sources.at(n)));  // failures are recorded for the index
  }
}

void ModelRepository::Poll() {
  std::vector<std::string> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, e] : models_) {
      std::error_code ec;
      if (!fs::is_directory(ModelDir(name), ec)) gone.push_back(name);
    }
  }
  for (const auto& name : gone) {
    (void)UnloadModel(name);
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

void ModelRepository::RetryPipelines(std::chrono::milliseconds* delay) {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, e] : models_) {
      if (e.retry_load) names.push_back(name);
    }
  }
  for (const std::string& name : names) {
    spdlog::info("model '{}': a step was unavailable; loading it again", name);
    (void)LoadModel(name, std::nullopt, /*only_if_retrying=*/true);
  }
  // 1 s, then twice as long each time while some pipeline still cannot load, at most 30 s.
  *delay = names.empty() ? std::chrono::milliseconds(1000) : std::min(*delay * 2, std::chrono::milliseconds(30000));
}

void ModelRepository::BackgroundLoop(int poll_secs) {
  auto next_poll = std::chrono::steady_clock::now() + std::chrono::seconds(poll_secs);
  std::chrono::milliseconds retry_delay(1000);
  auto next_retry = std::chrono::steady_clock::now() + retry_delay;
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
    if (std::chrono::steady_clock::now() >= next_retry) {
      RetryPipelines(&retry_delay);
      next_retry = std::chrono::steady_clock::now() + retry_delay;
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
