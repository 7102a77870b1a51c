#include "common/model_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/config_reader.h"
#include "common/pipeline_spec.h"

namespace berth {
namespace {

constexpr int64_t kMaxBatchSizeLimit = 1 << 20;
constexpr int kMaxInstances = 256;
constexpr int kMaxThreads = 1024;

Result<DynamicBatching> ParseDynamicBatching(const YAML::Node& db, const ModelConfig& c, const ConfigReader& r) {
  DynamicBatching out;
  if (db.IsNull()) return out;  // `dynamic_batching:` alone turns it on with defaults
  if (!db.IsMap()) return r.Error("dynamic_batching", "expected a mapping, got " + ConfigReader::Describe(db));
  RETURN_IF_ERROR(
      r.OnlyKeys(db, "dynamic_batching", {"max_queue_delay_us", "preferred_batch_sizes", "max_queue_size"}));
  if (c.max_batch_size == 0) {
    return r.Error("dynamic_batching", "needs max_batch_size > 0 (a model without a batch dimension cannot batch)");
  }
  if (db["max_queue_delay_us"]) {
    ASSIGN_OR_RETURN(out.max_queue_delay_us,
                     r.Int(db["max_queue_delay_us"], "dynamic_batching.max_queue_delay_us", 0, 10'000'000));
  }
  if (const YAML::Node& p = db["preferred_batch_sizes"]; p) {
    if (!p.IsSequence()) {
      return r.Error("dynamic_batching.preferred_batch_sizes",
                     "expected a list of batch sizes, got " + ConfigReader::Describe(p));
    }
    for (size_t i = 0; i < p.size(); ++i) {
      ASSIGN_OR_RETURN(int64_t v, r.Int(p[i], "dynamic_batching.preferred_batch_sizes[" + std::to_string(i) + "]", 1,
                                        c.max_batch_size));
      out.preferred_batch_sizes.push_back(v);
    }
    std::sort(out.preferred_batch_sizes.begin(), out.preferred_batch_sizes.end());
  }
  return out;
}

Result<Transforms> ParseTransforms(const YAML::Node& n, const ConfigReader& r) {
  Transforms t;
  if (n.IsNull()) return t;
  if (!n.IsMap()) return r.Error("transforms", "expected a mapping, got " + ConfigReader::Describe(n));
  RETURN_IF_ERROR(r.OnlyKeys(n, "transforms", {"fill_missing", "standardize", "one_hot"}));
  auto each = [&](const char* step, auto&& fn) -> Status {
    const YAML::Node& m = n[step];
    if (!m) return Status::Ok();
    std::string key = std::string("transforms.") + step;
    if (!m.IsMap()) return r.Error(key, "expected a mapping of column names, got " + ConfigReader::Describe(m));
    for (const auto& kv : m) {
      std::string col = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      RETURN_IF_ERROR(fn(col, kv.second, key + "." + ConfigReader::KeyText(col)));
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(each("fill_missing", [&](const std::string& col, const YAML::Node& v, const std::string& key) {
    if (!v.IsScalar()) return r.Error(key, "expected a value, got " + ConfigReader::Describe(v));
    t.fill_missing[col] = v.Scalar();
    return Status::Ok();
  }));
  RETURN_IF_ERROR(each("standardize", [&](const std::string& col, const YAML::Node& v, const std::string& key) {
    if (!v.IsSequence() || v.size() != 2) {
      return r.Error(key, "expected [mean, std], got " + ConfigReader::Describe(v));
    }
    ASSIGN_OR_RETURN(double mean, r.Double(v[0], key + "[0]"));
    ASSIGN_OR_RETURN(double sd, r.Double(v[1], key + "[1]"));
    if (sd <= 0) return r.Error(key + "[1]", "expected a standard deviation > 0, got " + ConfigReader::Describe(v[1]));
    t.standardize[col] = {mean, sd};
    return Status::Ok();
  }));
  RETURN_IF_ERROR(each("one_hot", [&](const std::string& col, const YAML::Node& v, const std::string& key) {
    ASSIGN_OR_RETURN(std::vector<std::string> cats, r.StringList(v, key));
    std::set<std::string> seen;
    for (size_t i = 0; i < cats.size(); ++i) {
      if (!seen.insert(cats[i]).second) return r.Error(key + "[" + std::to_string(i) + "]", "duplicate category");
    }
    if (t.standardize.count(col)) return r.Error(key, "a column cannot be both one_hot and standardize");
    t.one_hot[col] = std::move(cats);
    return Status::Ok();
  }));
  return t;
}

Result<VersionPolicy> ParseVersionPolicy(const YAML::Node& n, const ConfigReader& r) {
  const std::string expected = "expected 'all', {latest: N} or {specific: [versions]}, got ";
  VersionPolicy p;
  if (n.IsScalar() && n.Scalar() == "all") {
    p.kind = VersionPolicy::Kind::kAll;
    return p;
  }
  if (!n.IsMap() || n.size() != 1) return r.Error("version_policy", expected + ConfigReader::Describe(n));
  RETURN_IF_ERROR(r.OnlyKeys(n, "version_policy", {"latest", "specific"}));
  if (n["latest"]) {
    ASSIGN_OR_RETURN(p.latest, r.Int(n["latest"], "version_policy.latest", 1, 1000));
    return p;
  }
  const YAML::Node& s = n["specific"];
  if (!s.IsSequence() || s.size() == 0) {
    return r.Error("version_policy.specific",
                   "expected a non-empty list of versions, got " + ConfigReader::Describe(s));
  }
  p.kind = VersionPolicy::Kind::kSpecific;
  for (size_t i = 0; i < s.size(); ++i) {
    ASSIGN_OR_RETURN(int64_t v, r.Int(s[i], "version_policy.specific[" + std::to_string(i) + "]", 1, INT64_MAX / 2));
    p.specific.push_back(v);
  }
  return p;
}

Status ParseVersionPolicyAndWarmup(const YAML::Node& root, const ConfigReader& r, ModelConfig* c) {
  if (const YAML::Node& vp = root["version_policy"]; vp) {
    ASSIGN_OR_RETURN(c->version_policy, ParseVersionPolicy(vp, r));
  }
  // Zeros are no valid text or image file: a model with a BYTES input warms up only when asked to.
  for (const TensorSpec& in : c->inputs) {
    if (in.dtype == DataType::kBytes) c->warmup_requests = 0;
  }
  // Nor a valid row for a transform (0 need not be a one_hot category): one warms up only when asked to.
  if (c->kind == kTransformModelKind) c->warmup_requests = 0;
  if (const YAML::Node& w = root["warmup"]; w) {
    if (!w.IsMap()) return r.Error("warmup", "expected a mapping {requests: N}, got " + ConfigReader::Describe(w));
    RETURN_IF_ERROR(r.OnlyKeys(w, "warmup", {"requests"}));
    if (w["requests"]) {
      ASSIGN_OR_RETURN(c->warmup_requests, r.Int(w["requests"], "warmup.requests", 0, 10000));
      c->warmup_set = true;
    }
  }
  return Status::Ok();
}

Result<ModelConfig> ParseNode(const YAML::Node& root, const std::string& model_name, const ConfigReader& r,
                              bool require_outputs) {
  if (!root.IsMap()) return r.Error("(top level)", "expected a mapping of keys, got " + ConfigReader::Describe(root));
  bool transform = false;
  if (const YAML::Node& kind = root["kind"]; kind) {
    ASSIGN_OR_RETURN(std::string k, r.String(kind, "kind"));
    if (k != kBackendModelKind && k != kPipelineModelKind && k != kTransformModelKind) {
      return r.Error("kind", "expected backend, pipeline or transform");
    }
    if (k == kPipelineModelKind) {
      ConfigReader pipeline_reader = r;
      ASSIGN_OR_RETURN(ModelConfig c, ParsePipelineConfig(root, model_name, pipeline_reader));
      RETURN_IF_ERROR(ParseVersionPolicyAndWarmup(root, r, &c));
      return c;
    }
    transform = k == kTransformModelKind;
  }
  ModelConfig c;
  c.name = model_name;
  ConfigReader spec_reader = r;
  if (transform) {
    // No weights and no plugin: its outputs name the inputs that fill them (`columns`).
    RETURN_IF_ERROR(r.OnlyKeys(root, "",
                               {"kind", "max_batch_size", "inputs", "outputs", "instances", "dynamic_batching",
                                "version_policy", "warmup", "transforms"}));
    c.kind = kTransformModelKind;
    c.backend = kTransformModelKind;
    spec_reader.AllowOutputColumns();
    require_outputs = true;
  } else {
    RETURN_IF_ERROR(
        r.OnlyKeys(root, "",
                   {"kind", "backend", "max_batch_size", "inputs", "outputs", "instances", "threads", "parameters",
                    "dynamic_batching", "version_policy", "warmup", "transforms", "execution_timeout_ms"}));
    if (!root["backend"]) return r.Error("backend", "missing (name the backend plugin, e.g. 'backend: torchscript')");
    ASSIGN_OR_RETURN(c.backend, r.String(root["backend"], "backend"));
    for (char ch : c.backend) {
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_')) {
        return r.Error("backend", "expected a plugin name of letters, digits and '_'");
      }
    }
  }
  if (root["max_batch_size"]) {
    ASSIGN_OR_RETURN(c.max_batch_size, r.Int(root["max_batch_size"], "max_batch_size", 0, kMaxBatchSizeLimit));
  }
  if (root["instances"]) {
    ASSIGN_OR_RETURN(int64_t v, r.Int(root["instances"], "instances", 1, kMaxInstances));
    c.instances = static_cast<int>(v);
  }
  if (root["threads"]) {
    ASSIGN_OR_RETURN(int64_t v, r.Int(root["threads"], "threads", 1, kMaxThreads));
    c.threads = static_cast<int>(v);
  }
  ASSIGN_OR_RETURN(c.inputs, spec_reader.Specs(root["inputs"], "inputs", true));
  ASSIGN_OR_RETURN(c.outputs, spec_reader.Specs(root["outputs"], "outputs", false));
  if (transform && c.inputs.empty()) return r.Error("inputs", "expected at least one input");
  if (c.outputs.empty() && require_outputs) return r.Error("outputs", "expected at least one output");
  if (const YAML::Node& p = root["parameters"]; p && !p.IsNull()) {
    if (!p.IsMap())
      return r.Error("parameters", "expected a mapping of names to values, got " + ConfigReader::Describe(p));
    for (const auto& kv : p) {
      std::string k = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      // A list of scalars (mean: [0.485, 0.456, 0.406]) reaches the backend comma-separated.
      std::string value;
      bool scalars = kv.second.IsScalar() || kv.second.IsSequence();
      if (kv.second.IsSequence()) {
        for (const YAML::Node& item : kv.second) {
          scalars = scalars && item.IsScalar();
          if (scalars) value += (value.empty() ? "" : ",") + item.Scalar();
        }
      } else if (scalars) {
        value = kv.second.Scalar();
      }
      if (!scalars)
        return r.Error("parameters." + ConfigReader::KeyText(k),
                       "expected a scalar value or a list of them, got " + ConfigReader::Describe(kv.second));
      c.parameters[k] = value;
    }
  }
  RETURN_IF_ERROR(ParseVersionPolicyAndWarmup(root, r, &c));
  if (root["execution_timeout_ms"]) {
    ASSIGN_OR_RETURN(c.execution_timeout_ms,
                     r.Int(root["execution_timeout_ms"], "execution_timeout_ms", 0, int64_t{24} * 3600 * 1000));
  }
  if (const YAML::Node& tr = root["transforms"]; tr) {
    ASSIGN_OR_RETURN(c.transforms, ParseTransforms(tr, r));
  }
  if (const YAML::Node& db = root["dynamic_batching"]; db) {
    ASSIGN_OR_RETURN(c.dynamic_batching, ParseDynamicBatching(db, c, r));
    if (db.IsMap() && db["max_queue_size"]) {
      ASSIGN_OR_RETURN(c.max_queue_size, r.Int(db["max_queue_size"], "dynamic_batching.max_queue_size", 1, 1 << 24));
    }
  }
  return c;
}

}  // namespace

std::vector<int64_t> ModelConfig::FullShape(const TensorSpec& spec) const {
  std::vector<int64_t> s;
  s.reserve(spec.shape.size() + 1);
  if (batched()) s.push_back(-1);
  s.insert(s.end(), spec.shape.begin(), spec.shape.end());
  return s;
}

const TensorSpec* ModelConfig::FindInput(std::string_view n) const {
  for (const auto& s : inputs)
    if (s.name == n) return &s;
  return nullptr;
}

const TensorSpec* ModelConfig::FindOutput(std::string_view n) const {
  for (const auto& s : outputs)
    if (s.name == n) return &s;
  return nullptr;
}

namespace {

Result<ModelConfig> Parse(std::string_view yaml_text, const std::string& model_name, const std::string& source,
                          bool require_outputs) {
  ConfigReader reader(source);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ": line " + std::to_string(e.mark.line + 1) + ", column " +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  try {
    return ParseNode(root, model_name, reader, require_outputs);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ": " + e.what());
  }
}

}  // namespace

Result<ModelConfig> ParseModelConfig(std::string_view yaml_text, const std::string& model_name,
                                     const std::string& source) {
  return Parse(yaml_text, model_name, source, true);
}

Result<ModelConfig> ParsePartialModelConfig(std::string_view yaml_text, const std::string& model_name,
                                            const std::string& source) {
  return Parse(yaml_text, model_name, source, false);
}

}  // namespace berth
