// Triton's HTTP extensions that tritonclient calls every day:
//   GET /v2/models/{m}[/versions/{v}]/config   the model configuration, as Triton's JSON model config
//   GET /v2/models[/{m}[/versions/{v}]]/stats  the statistics extension, from the counters /metrics shows
#include <filesystem>

#include "common/json_writer.h"
#include "protocol/http/status_mapping.h"
#include "protocol/http/v2_handler.h"
#include "protocol/v2/v2_codec.h"

namespace berth {
namespace {

void Duration(JsonWriter& w, const char* key, uint64_t count, uint64_t us) {
  w.Key(key);
  w.BeginObject();
  w.Key("count");
  w.Int(count);
  w.Key("ns");
  w.Int(us * 1000);
  w.EndObject();
}

void Specs(JsonWriter& w, const char* key, const std::vector<TensorSpec>& specs) {
  w.Key(key);
  w.BeginArray();
  for (const TensorSpec& s : specs) {
    w.BeginObject();
    w.Key("name");
    w.String(s.name);
    w.Key("data_type");
    w.String(TritonTypeName(s.dtype));
    w.Key("dims");
    w.BeginArray();
    for (int64_t d : s.shape) w.Int(d);
    w.EndArray();
    if (s.optional) {
      w.Key("optional");
      w.Bool(true);
    }
    if (!s.labels_file.empty()) {  // Triton's field: the classification extension has labels for this output
      w.Key("label_filename");
      w.String(std::filesystem::path(s.labels_file).filename().string());
    }
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

HttpResponse V2Handler::ModelConfigJson(std::string_view model, int64_t version) const {
  Result<ServedModel> m = server_->Resolve(model, version);
  if (!m.ok()) return ErrorResponse(m.status());
  const ModelConfig& c = *m->config;
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("name");
  w.String(c.name);
  w.Key("platform");
  w.String(c.backend);
  w.Key("backend");
  w.String(c.backend);
  w.Key("max_batch_size");
  w.Int(c.max_batch_size);
  Specs(w, "input", c.inputs);
  Specs(w, "output", c.outputs);
  w.Key("version_policy");
  w.BeginObject();
  switch (c.version_policy.kind) {
    case VersionPolicy::Kind::kLatest:
      w.Key("latest");
      w.BeginObject();
      w.Key("num_versions");
      w.Int(c.version_policy.latest);
      w.EndObject();
      break;
    case VersionPolicy::Kind::kAll:
      w.Key("all");
      w.BeginObject();
      w.EndObject();
      break;
    case VersionPolicy::Kind::kSpecific:
      w.Key("specific");
      w.BeginObject();
      w.Key("versions");
      w.BeginArray();
      for (int64_t v : c.version_policy.specific) w.Int(v);
      w.EndArray();
      w.EndObject();
      break;
  }
  w.EndObject();
  if (c.dynamic_batching) {
    w.Key("dynamic_batching");
    w.BeginObject();
    w.Key("preferred_batch_size");
    w.BeginArray();
    for (int64_t p : c.dynamic_batching->preferred_batch_sizes) w.Int(p);
    w.EndArray();
    w.Key("max_queue_delay_microseconds");
    w.Int(c.dynamic_batching->max_queue_delay_us);
    w.EndObject();
  }
  w.Key("instance_group");
  w.BeginArray();
  w.BeginObject();
  w.Key("name");
  w.String(c.name);
  w.Key("kind");
  w.String("KIND_CPU");
  w.Key("count");
  w.Int(c.instances);
  w.EndObject();
  w.EndArray();
  w.Key("parameters");
  w.BeginObject();
  for (const auto& [k, v] : c.parameters) {
    w.Key(k);
    w.BeginObject();
    w.Key("string_value");
    w.String(v);
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return JsonResponse(std::move(out));
}

HttpResponse V2Handler::ModelStatsJson(std::string_view model, int64_t version) const {
  Result<std::vector<ServedModel>> versions = server_->Statistics(model, version);
  if (!versions.ok()) return ErrorResponse(versions.status());
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("model_stats");
  w.BeginArray();
  for (const ServedModel& v : *versions) {
    const ModelMetrics& m = *v.metrics;
    uint64_t ok = m.request_success.load(), failed = m.request_failure.load();
    w.BeginObject();
    w.Key("name");
    w.String(v.name);
    w.Key("version");
    w.String(std::to_string(v.version));
    w.Key("last_inference");
    w.Int(m.last_inference_ms.load());
    w.Key("inference_count");
    w.Int(m.inference_count.load());
    w.Key("execution_count");
    w.Int(m.execution_count.load());
    w.Key("inference_stats");
    w.BeginObject();
    Duration(w, "success", ok, m.success_us.load());
    Duration(w, "fail", failed, m.failure_us.load());
    Duration(w, "queue", ok, m.queue_us.load());
    Duration(w, "compute_input", 0, 0);
    Duration(w, "compute_infer", ok, m.compute_us.load());
    Duration(w, "compute_output", 0, 0);
    w.EndObject();
    w.Key("batch_stats");
    w.BeginArray();
    for (size_t i = 0; i < ModelMetrics::kExactBatchSizes; ++i) {
      uint64_t n = m.executions_by_size[i].load();
      if (n == 0) continue;
      w.BeginObject();
      w.Key("batch_size");
      w.Int(i + 1);
      Duration(w, "compute_input", n, 0);
      Duration(w, "compute_infer", n, m.compute_us_by_size[i].load());
      Duration(w, "compute_output", n, 0);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return JsonResponse(std::move(out));
}

}  // namespace berth
