#include "server/inference_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

#include "common/logging.h"
#include "request/validate.h"

namespace berth {
namespace {

using Clock = std::chrono::steady_clock;

// A huge timeout means "no limit", never a deadline that overflowed into the past.
constexpr int64_t kMaxTimeoutUs = int64_t{1} << 40;  // ~12 days

std::vector<TensorMetadata> SpecsOf(const ModelConfig& c, const std::vector<TensorSpec>& specs) {
  std::vector<TensorMetadata> out;
  for (const TensorSpec& s : specs) out.push_back({s.name, s.dtype, c.FullShape(s), s.optional});
  return out;
}

// A synthetic request for warm-up: zeros (empty strings for BYTES), batch 1, -1 dims as 1.
std::unique_ptr<InferRequest> ZerosRequest(const ModelConfig& c) {
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
  return request;
}

}  // namespace

Result<std::unique_ptr<InferenceServer>> InferenceServer::Create(Options options) {
  std::unique_ptr<InferenceServer> server(new InferenceServer(std::move(options)));
  ModelRepository::Options ro = server->options_.repository;
  InferenceServer* self = server.get();
  ro.warmup = [self](const std::shared_ptr<ModelVersion>& version) { return self->WarmUp(version); };
  ASSIGN_OR_RETURN(server->repository_, ModelRepository::Create(std::move(ro)));
  return server;
}

InferenceServer::InferenceServer(Options options) : options_(std::move(options)) {}

InferenceServer::~InferenceServer() { Stop(); }

void InferenceServer::Stop() {
  if (repository_) repository_->StopAll();
}

void InferenceServer::InferAsync(std::string_view model, int64_t version, Result<std::unique_ptr<InferRequest>> request,
                                 InferCompletion done, const InferOptions& options) {
  Result<std::shared_ptr<ModelVersion>> mv = repository_->Get(model, version);
  if (!mv.ok()) return done(mv.status());
  if (!request.ok()) {
    (*mv)->metrics->request_failure.fetch_add(1, std::memory_order_relaxed);
    return done(request.status());
  }
  Run(std::move(mv).value(), std::move(request).value(), std::move(done), options, /*count=*/true);
}

void InferenceServer::Run(std::shared_ptr<ModelVersion> mv, std::unique_ptr<InferRequest> request, InferCompletion done,
                          const InferOptions& options, bool count) {
  Clock::time_point received = options.received.value_or(Clock::now());
  ModelMetrics& metrics = *mv->metrics;
  Status valid = ValidateRequest(*mv->config, request.get());
  if (!valid.ok()) {
    if (count) metrics.request_failure.fetch_add(1, std::memory_order_relaxed);
    return done(valid);
  }
  int64_t timeout_us = request->timeout_us > 0 ? request->timeout_us : options_.default_timeout_us;
  if (timeout_us > 0 && timeout_us < kMaxTimeoutUs)
    request->deadline = received + std::chrono::microseconds(timeout_us);

  // Counted before the decision, so that this request is one of those in flight.
  int64_t in_flight = in_flight_.fetch_add(1, std::memory_order_relaxed) + 1;
  int64_t counted = options.nested ? in_flight - 1 : in_flight;
  bool may_run_here = options.allow_inline && std::max(counted, options.caller_in_flight) <= options_.inline_slots;
  Scheduler* scheduler = mv->scheduler.get();
  // The completion holds the version: it is retired only after its last request.
  scheduler->Enqueue(
      std::move(request),
      [this, done = std::move(done), keep = std::move(mv), received, count](Result<InferResponse> result) {
        in_flight_.fetch_sub(1, std::memory_order_relaxed);
        if (count) {
          ModelMetrics& m = *keep->metrics;
          auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - received);
          uint64_t us = static_cast<uint64_t>(elapsed.count());
          m.request_duration_us.Observe(us);
          (result.ok() ? m.request_success : m.request_failure).fetch_add(1, std::memory_order_relaxed);
          (result.ok() ? m.success_us : m.failure_us).fetch_add(us, std::memory_order_relaxed);
          m.last_inference_ms.store(
              std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count(),
              std::memory_order_relaxed);
        }
        if (!result.ok() && result.status().code() == StatusCode::kInternal) {
          WarnRateLimited(result.status().message());
        }
        done(std::move(result));
      },
      may_run_here);
}

Result<InferResponse> InferenceServer::Infer(std::string_view model, int64_t version,
                                             std::unique_ptr<InferRequest> request) {
  std::promise<Result<InferResponse>> promise;
  auto future = promise.get_future();
  InferAsync(model, version, std::move(request),
             [&promise](Result<InferResponse> r) { promise.set_value(std::move(r)); });
  return future.get();
}

Status InferenceServer::WarmUp(const std::shared_ptr<ModelVersion>& version) {
  for (int64_t i = 0; i < version->config->warmup_requests; ++i) {
    std::promise<Result<InferResponse>> promise;
    auto future = promise.get_future();
    Run(
        version, ZerosRequest(*version->config),
        [&promise](Result<InferResponse> r) { promise.set_value(std::move(r)); }, InferOptions{}, /*count=*/false);
    Result<InferResponse> r = future.get();
    if (!r.ok()) return r.status().WithContext("warm-up request " + std::to_string(i + 1));
  }
  if (version->config->warmup_requests > 0) version->metrics->ResetExecutions();
  return Status::Ok();
}

Status InferenceServer::Ready() const {
  if (draining_.load()) return Unavailable("server is shutting down");
  if (!loaded_.load()) return Unavailable("models are still loading");
  return Status::Ok();
}

Result<ModelMetadata> InferenceServer::Metadata(std::string_view model, int64_t version) const {
  ASSIGN_OR_RETURN(std::shared_ptr<ModelVersion> mv, repository_->Get(model, version));
  ASSIGN_OR_RETURN(ModelEntry entry, repository_->Entry(model));
  const ModelConfig& c = *mv->config;
  ModelMetadata m;
  m.name = c.name;
  m.versions = entry.ReadyVersions();
  m.platform = c.backend;
  m.inputs = SpecsOf(c, c.inputs);
  m.outputs = SpecsOf(c, c.outputs);
  return m;
}

Status InferenceServer::ModelReady(std::string_view model, int64_t version) const {
  ASSIGN_OR_RETURN(std::shared_ptr<ModelVersion> mv, repository_->Get(model, version));
  return mv->scheduler->Health();
}

Result<ServedModel> InferenceServer::Resolve(std::string_view model, int64_t version) const {
  ASSIGN_OR_RETURN(std::shared_ptr<ModelVersion> mv, repository_->Get(model, version));
  return ServedModel{mv->name, mv->version, mv->config, mv->metrics};
}

std::vector<IndexEntry> InferenceServer::Index() const { return repository_->Index(); }

Result<std::vector<ServedModel>> InferenceServer::Statistics(std::string_view model, int64_t version) const {
  std::vector<ServedModel> out;
  if (model.empty()) {
    for (const auto& mv : repository_->LoadedVersions())
      out.push_back({mv->name, mv->version, mv->config, mv->metrics});
    return out;
  }
  if (version >= 0) {
    ASSIGN_OR_RETURN(ServedModel one, Resolve(model, version));
    out.push_back(std::move(one));
    return out;
  }
  ASSIGN_OR_RETURN(ModelEntry entry, repository_->Entry(model));
  for (int64_t v : entry.ReadyVersions()) {
    // A version retired since the listing is left out, not an error for the rest.
    Result<ServedModel> one = Resolve(model, v);
    if (one.ok()) out.push_back(std::move(one).value());
  }
  if (out.empty()) return repository_->Get(model, -1).status();
  return out;
}

std::vector<VersionMetrics> InferenceServer::MetricsSnapshot() const {
  std::vector<VersionMetrics> out;
  for (const auto& mv : repository_->LoadedVersions()) out.push_back({mv->name, mv->version, mv->metrics});
  return out;
}

void InferenceServer::LoadModelAsync(std::string name, std::function<void(Status)> done) {
  ModelRepository* repo = repository_.get();
  repo->Submit([repo, name = std::move(name), done = std::move(done)] { done(repo->LoadModel(name)); });
}

void InferenceServer::UnloadModelAsync(std::string name, std::function<void(Status)> done) {
  ModelRepository* repo = repository_.get();
  repo->Submit([repo, name = std::move(name), done = std::move(done)] { done(repo->UnloadModel(name)); });
}

Status InferenceServer::LoadModel(const std::string& name) { return repository_->LoadModel(name); }

void InferenceServer::LoadAll() { repository_->LoadAll(); }

void InferenceServer::StartBackground(int poll_secs) { repository_->StartBackground(poll_secs); }

}  // namespace berth
