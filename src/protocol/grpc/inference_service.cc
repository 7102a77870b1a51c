// GRPCInferenceService's unary RPCs. Every RPC but ServerLive/ServerReady
// carries the inference token (when one is set) as "authorization" metadata;
// repository load/unload the admin token. Errors carry the messages HTTP gives.
#include "protocol/grpc/inference_service.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "berth/version.h"
#include "protocol/v2/v2_codec.h"
#include "repository/model_source.h"
#include "request/traceparent.h"

namespace berth {
namespace {

using Clock = std::chrono::steady_clock;

grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx, const Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

void SetSpecs(const std::vector<TensorMetadata>& specs,
              google::protobuf::RepeatedPtrField<inference::ModelMetadataResponse::TensorMetadata>* out) {
  for (const TensorMetadata& s : specs) {
    auto* t = out->Add();
    t->set_name(s.name);
    t->set_datatype(std::string(DataTypeName(s.dtype)));
    for (int64_t d : s.shape) t->add_shape(d);
  }
}

inference::DataType ProtoType(DataType dtype) {
  inference::DataType t = inference::TYPE_INVALID;
  inference::DataType_Parse(std::string(TritonTypeName(dtype)), &t);
  return t;
}

template <typename Spec>
void SetConfigSpecs(const std::vector<TensorSpec>& specs, google::protobuf::RepeatedPtrField<Spec>* out) {
  for (const TensorSpec& s : specs) {
    Spec* t = out->Add();
    t->set_name(s.name);
    t->set_data_type(ProtoType(s.dtype));
    for (int64_t d : s.shape) t->add_dims(d);
  }
}

void FillConfig(const ModelConfig& c, inference::ModelConfig* out) {
  out->set_name(c.name);
  out->set_platform(c.backend);
  out->set_backend(c.backend);
  out->set_max_batch_size(static_cast<int32_t>(c.max_batch_size));
  SetConfigSpecs(c.inputs, out->mutable_input());
  SetConfigSpecs(c.outputs, out->mutable_output());
  auto* policy = out->mutable_version_policy();
  switch (c.version_policy.kind) {
    case VersionPolicy::Kind::kLatest:
      policy->mutable_latest()->set_num_versions(static_cast<uint32_t>(c.version_policy.latest));
      break;
    case VersionPolicy::Kind::kAll: policy->mutable_all(); break;
    case VersionPolicy::Kind::kSpecific:
      for (int64_t v : c.version_policy.specific) policy->mutable_specific()->add_versions(v);
      break;
  }
  if (c.dynamic_batching) {
    auto* b = out->mutable_dynamic_batching();
    for (int64_t p : c.dynamic_batching->preferred_batch_sizes) b->add_preferred_batch_size(static_cast<int32_t>(p));
    b->set_max_queue_delay_microseconds(static_cast<uint64_t>(c.dynamic_batching->max_queue_delay_us));
  }
  auto* group = out->add_instance_group();
  group->set_name(c.name);
  group->set_kind(inference::ModelInstanceGroup::KIND_CPU);
  group->set_count(c.instances);
  for (const auto& [k, v] : c.parameters) (*out->mutable_parameters())[k].set_string_value(v);
}

void SetDuration(inference::StatisticDuration* d, uint64_t count, uint64_t us) {
  d->set_count(count);
  d->set_ns(us * 1000);
}

void FillStatistics(const ServedModel& v, inference::ModelStatistics* out) {
  const ModelMetrics& m = *v.metrics;
  uint64_t ok = m.request_success.load(), failed = m.request_failure.load();
  out->set_name(v.name);
  out->set_version(std::to_string(v.version));
  out->set_last_inference(static_cast<uint64_t>(m.last_inference_ms.load()));
  out->set_inference_count(m.inference_count.load());
  out->set_execution_count(m.execution_count.load());
  auto* s = out->mutable_inference_stats();
  SetDuration(s->mutable_success(), ok, m.success_us.load());
  SetDuration(s->mutable_fail(), failed, m.failure_us.load());
  SetDuration(s->mutable_queue(), ok, m.queue_us.load());
  SetDuration(s->mutable_compute_input(), 0, 0);
  SetDuration(s->mutable_compute_infer(), ok, m.compute_us.load());
  SetDuration(s->mutable_compute_output(), 0, 0);
  for (size_t i = 0; i < ModelMetrics::kExactBatchSizes; ++i) {
    uint64_t n = m.executions_by_size[i].load();
    if (n == 0) continue;
    auto* b = out->add_batch_stats();
    b->set_batch_size(i + 1);
    SetDuration(b->mutable_compute_input(), n, 0);
    SetDuration(b->mutable_compute_infer(), n, m.compute_us_by_size[i].load());
    SetDuration(b->mutable_compute_output(), n, 0);
  }
}

// Answers compressed when the request came compressed (clients always offer
// gzip, and compressing every answer costs more CPU than it saves on loopback).
void MirrorCompression(grpc::CallbackServerContext* ctx) {
  auto it = ctx->client_metadata().find("grpc-encoding");
  if (it == ctx->client_metadata().end()) return;
  std::string_view enc(it->second.data(), it->second.size());
  if (enc == "gzip") ctx->set_compression_algorithm(GRPC_COMPRESS_GZIP);
  if (enc == "deflate") ctx->set_compression_algorithm(GRPC_COMPRESS_DEFLATE);
}

}  // namespace

std::string_view InferenceService::Authorization(const grpc::CallbackServerContext* ctx) {
  auto it = ctx->client_metadata().find("authorization");
  if (it == ctx->client_metadata().end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

grpc::ServerUnaryReactor* InferenceService::ServerLive(grpc::CallbackServerContext* ctx,
                                                       const inference::ServerLiveRequest*,
                                                       inference::ServerLiveResponse* resp) {
  resp->set_live(true);
  return Answer(ctx, Status::Ok());
}

grpc::ServerUnaryReactor* InferenceService::ServerReady(grpc::CallbackServerContext* ctx,
                                                        const inference::ServerReadyRequest*,
                                                        inference::ServerReadyResponse* resp) {
  resp->set_ready(server_->Ready().ok());
  return Answer(ctx, Status::Ok());
}

grpc::ServerUnaryReactor* InferenceService::ModelReady(grpc::CallbackServerContext* ctx,
                                                       const inference::ModelReadyRequest* req,
                                                       inference::ModelReadyResponse* resp) {
  if (Status s = access_->CheckInference(Authorization(ctx)); !s.ok()) return Answer(ctx, s);
  Result<int64_t> version = ParseGrpcVersion(req->version());
  if (!version.ok()) return Answer(ctx, version.status());
  resp->set_ready(server_->ModelReady(req->name(), *version).ok());
  return Answer(ctx, Status::Ok());
}

grpc::ServerUnaryReactor* InferenceService::ServerMetadata(grpc::CallbackServerContext* ctx,
                                                           const inference::ServerMetadataRequest*,
                                                           inference::ServerMetadataResponse* resp) {
  if (Status s = access_->CheckInference(Authorization(ctx)); !s.ok()) return Answer(ctx, s);
  resp->set_name("berth");
  resp->set_version(Version());
  for (const std::string& e : V2Extensions()) resp->add_extensions(e);
  return Answer(ctx, Status::Ok());
}

grpc::ServerUnaryReactor* InferenceService::ModelMetadata(grpc::CallbackServerContext* ctx,
                                                          const inference::ModelMetadataRequest* req,
                                                          inference::ModelMetadataResponse* resp) {
  if (Status s = access_->CheckInference(Authorization(ctx)); !s.ok()) return Answer(ctx, s);
  Result<int64_t> version = ParseGrpcVersion(req->version());
  if (!version.ok()) return Answer(ctx, version.status());
  Result<berth::ModelMetadata> m = server_->Metadata(req->name(), *version);
  if (!m.ok()) return Answer(ctx, m.status());
  resp->set_name(m->name);
  for (int64_t v : m->versions) resp->add_versions(std::to_string(v));
  resp->set_platform(m->platform);
  SetSpecs(m->inputs, resp->mutable_inputs());
  SetSpecs(m->outputs, resp->mutable_outputs());
  return Answer(ctx, Status::Ok());
}

grpc::ServerUnaryReactor* InferenceService::ModelConfig(grpc::CallbackServerContext* ctx,
                                                        const inference::ModelConfigRequest* req,
                                                        inference::ModelConfigResponse* resp) {
  if (Status s = access_->CheckInference(Authorization(ctx)); !s.ok()) return Answer(ctx, s);
  Result<int64_t> version = ParseGrpcVersion(req->version());
  if (!version.ok()) return Answer(ctx, version.status());
  Result<ServedModel> m = server_->Resolve(req->name(), *version);
  if (!m.ok()) return Answer(ctx, m.status());
  FillConfig(*m->config, resp->mutable_config());
  return Answer(ctx, Status::Ok());
}

grpc::ServerUnaryReactor* InferenceService::ModelStatistics(grpc::CallbackServerContext* ctx,
                                                            const inference::ModelStatisticsRequest* req,
                                                            inference::ModelStatisticsResponse* resp) {
  if (Status s = access_->CheckInference(Authorization(ctx)); !s.ok()) return Answer(ctx, s);
  Result<int64_t> version = ParseGrpcVersion(req->version());
  if (!version.ok()) return Answer(ctx, version.status());
  Result<std::vector<ServedModel>> versions = server_->Statistics(req->name(), *version);
  if (!versions.ok()) return Answer(ctx, versions.status());
  for (const ServedModel& v : *versions) FillStatistics(v, resp->add_model_stats());
  return Answer(ctx, Status::Ok());
}

grpc::ServerUnaryReactor* InferenceService::RepositoryIndex(grpc::CallbackServerContext* ctx,
                                                            const inference::RepositoryIndexRequest* req,
                                                            inference::RepositoryIndexResponse* resp) {
  if (Status s = access_->CheckInference(Authorization(ctx)); !s.ok()) return Answer(ctx, s);
  for (const IndexEntry& e : server_->Index()) {
    if (req->ready() && e.state != ModelState::kReady) continue;
    auto* m = resp->add_models();
    m->set_name(e.name);
    m->set_version(e.version);
    m->set_state(std::string(ModelStateName(e.state)));
    m->set_reason(e.reason);
  }
  return Answer(ctx, Status::Ok());
}

namespace {

template <typename Request>
grpc::ServerUnaryReactor* Control(InferenceServer* server, const AccessPolicy* access, grpc::CallbackServerContext* ctx,
                                  const Request* req, bool load) {
  if (Status s = access->CheckModelControl(InferenceService::Authorization(ctx)); !s.ok()) return Answer(ctx, s);
  if (!IsValidModelName(req->model_name())) {
    return Answer(ctx, InvalidArgument("'" + req->model_name() + "' is not a valid model name"));
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // Loading takes seconds: it runs on the server's control thread, never on a gRPC thread.
  auto done = [reactor](Status s) { reactor->Finish(ToGrpcStatus(s)); };
  if (load) {
    server->LoadModelAsync(req->model_name(), std::move(done));
  } else {
    server->UnloadModelAsync(req->model_name(), std::move(done));
  }
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* InferenceService::RepositoryModelLoad(grpc::CallbackServerContext* ctx,
                                                                const inference::RepositoryModelLoadRequest* req,
                                                                inference::RepositoryModelLoadResponse*) {
  return Control(server_, access_, ctx, req, /*load=*/true);
}

grpc::ServerUnaryReactor* InferenceService::RepositoryModelUnload(grpc::CallbackServerContext* ctx,
                                                                  const inference::RepositoryModelUnloadRequest* req,
                                                                  inference::RepositoryModelUnloadResponse*) {
  return Control(server_, access_, ctx, req, /*load=*/false);
}

void InferenceService::RunInfer(grpc::CallbackServerContext* ctx, const inference::ModelInferRequest& in,
                                inference::ModelInferResponse* out, std::function<void(Status)> done) {
  InferOptions options;
  options.received = Clock::now();
  if (Status s = access_->CheckInference(Authorization(ctx)); !s.ok()) return done(s);
  if (server_->draining()) return done(Unavailable("server is shutting down"));
  Result<int64_t> version = ParseGrpcVersion(in.model_version());
  if (!version.ok()) return done(version.status());
  auto form = std::make_shared<GrpcRequestForm>();
  Result<std::unique_ptr<InferRequest>> request = DecodeGrpcInferRequest(in, form.get());
  // The gRPC deadline is the request's: it must start executing before then.
  auto deadline = ctx->deadline();
  if (request.ok() && deadline != std::chrono::system_clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::system_clock::now());
    if (left.count() <= 0)
      return done(Status(StatusCode::kDeadlineExceeded, "the call's deadline passed before it was read"));
    InferRequest& r = **request;
    r.timeout_us = r.timeout_us > 0 ? std::min<int64_t>(r.timeout_us, left.count()) : left.count();
  }
  if (request.ok()) {
    if (auto it = ctx->client_metadata().find("traceparent"); it != ctx->client_metadata().end()) {
      (*request)->traceparent = CheckedTraceparent(std::string_view(it->second.data(), it->second.size()));
    }
  }
  MirrorCompression(ctx);
  server_->InferAsync(
      in.model_name(), *version, std::move(request),
      [form, out, done = std::move(done)](Result<InferResponse> result) {
        if (!result.ok()) return done(result.status());
        EncodeGrpcInferResponse(std::move(result).value(), *form, out);
        done(Status::Ok());
      },
      options);
}

grpc::ServerUnaryReactor* InferenceService::ModelInfer(grpc::CallbackServerContext* ctx,
                                                       const inference::ModelInferRequest* req,
                                                       inference::ModelInferResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  in_flight_->fetch_add(1, std::memory_order_relaxed);
  RunInfer(ctx, *req, resp, [this, reactor](Status s) {
    reactor->Finish(ToGrpcStatus(s));
    in_flight_->fetch_sub(1, std::memory_order_relaxed);
  });
  return reactor;
}

grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
InferenceService::ModelStreamInfer(grpc::CallbackServerContext* ctx) {
  return NewInferStream(this, ctx);
}

}  // namespace berth
