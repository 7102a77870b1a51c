#include "common/model_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace berth {
namespace {

constexpr int64_t kMaxBatchSizeLimit = 1 << 20;
constexpr int kMaxInstances = 256;
constexpr int kMaxThreads = 1024;

// Reads model.yaml nodes; every error names the file, the key and what was expected.
class ConfigReader {
 public:
  explicit ConfigReader(const std::string& source) : source_(source) {}

  Status Error(const std::string& key, const std::string& what) const {
    return InvalidArgument(source_ + ": " + key + ": " + what);
  }

  // What a node is, for "expected X, got Y". A number is shown as written;
  // text never is: the message may reach a client, and must not quote what
  // a file holds (a model.yaml could be anything the server can read).
  static std::string Describe(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Null: return "null";
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Map: return "a mapping";
      case YAML::NodeType::Scalar: return IsNumber(n.Scalar()) ? n.Scalar() : "a string";
      default: return "nothing";
    }
  }

  static bool IsNumber(const std::string& s) {
    if (s.empty() || s.size() > 24) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
    });
  }

  Result<int64_t> Int(const YAML::Node& n, const std::string& key, int64_t lo, int64_t hi) const {
    std::string expected = "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    if (!n.IsScalar()) return Error(key, expected + ", got " + Describe(n));
    const std::string& s = n.Scalar();
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(s, &used, 10);
    } catch (const std::exception&) {
      used = 0;
    }
    if (s.empty() || used != s.size() || v < lo || v > hi) return Error(key, expected + ", got " + Describe(n));
    return static_cast<int64_t>(v);
  }

  Result<std::string> String(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar() || n.Scalar().empty()) return Error(key, "expected a non-empty string, got " + Describe(n));
    return n.Scalar();
  }

  // A non-empty list of non-empty strings.
  Result<std::vector<std::string>> StringList(const YAML::Node& n, const std::string& key) const {
    if (!n.IsSequence() || n.size() == 0) return Error(key, "expected a non-empty list of names, got " + Describe(n));
    std::vector<std::string> out;
    for (size_t i = 0; i < n.size(); ++i) {
      ASSIGN_OR_RETURN(std::string s, String(n[i], key + "[" + std::to_string(i) + "]"));
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<double> Double(const YAML::Node& n, const std::string& key) const {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      size_t used = 0;
      double v = 0;
      try {
        v = std::stod(s, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (!s.empty() && used == s.size() && std::isfinite(v)) return v;
    }
    return Error(key, "expected a finite number, got " + Describe(n));
  }

  // Fails on any key of `map` that is not in `allowed`.
  Status OnlyKeys(const YAML::Node& map, const std::string& where, const std::set<std::string>& allowed) const {
    for (const auto& kv : map) {
      std::string k = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      if (!allowed.count(k)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        return Error(where.empty() ? k : where + "." + k, "unknown key (expected one of: " + list + ")");
      }
    }
    return Status::Ok();
  }

  Result<TensorSpec> Spec(const YAML::Node& n, const std::string& key, bool is_input) const {
    if (!n.IsMap()) return Error(key, "expected a mapping {name, datatype, shape}, got " + Describe(n));
    if (is_input) {
      RETURN_IF_ERROR(OnlyKeys(n, key, {"name", "datatype", "shape", "columns"}));
    } else {
      RETURN_IF_ERROR(OnlyKeys(n, key, {"name", "datatype", "shape"}));
    }
    TensorSpec spec;
    for (const char* required : {"name", "datatype", "shape"}) {
      if (!n[required])
        return Error(key + "." + required, "missing (every " + std::string(is_input ? "input" : "output") +
                                               " needs name, datatype and shape)");
    }
    ASSIGN_OR_RETURN(spec.name, String(n["name"], key + ".name"));
    ASSIGN_OR_RETURN(std::string dt, String(n["datatype"], key + ".datatype"));
    auto dtype = ParseDataType(dt);
    if (!dtype) {
      return Error(key + ".datatype",
                   "expected one of BOOL, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64, FP16, FP32, FP64, "
                   "BYTES");
    }
    spec.dtype = *dtype;
    const YAML::Node& shape = n["shape"];
    if (!shape.IsSequence()) return Error(key + ".shape", "expected a list of dimensions, got " + Describe(shape));
    for (size_t i = 0; i < shape.size(); ++i) {
      ASSIGN_OR_RETURN(int64_t d, Int(shape[i], key + ".shape[" + std::to_string(i) + "]", -1, INT32_MAX));
      spec.shape.push_back(d);
    }
    if (const YAML::Node& cols = n["columns"]; cols) {
      ASSIGN_OR_RETURN(spec.columns, StringList(cols, key + ".columns"));
    }
    return spec;
  }

  Result<std::vector<TensorSpec>> Specs(const YAML::Node& n, const std::string& key, bool is_input) const {
    std::vector<TensorSpec> specs;
    if (!n || n.IsNull()) return specs;
    if (!n.IsSequence()) return Error(key, "expected a list of {name, datatype, shape}, got " + Describe(n));
    std::set<std::string> seen;
    for (size_t i = 0; i < n.size(); ++i) {
      std::string k = key + "[" + std::to_string(i) + "]";
      ASSIGN_OR_RETURN(TensorSpec s, Spec(n[i], k, is_input));
      if (!seen.insert(s.name).second) return Error(k + ".name", "duplicate name '" + s.name + "'");
      specs.push_back(std::move(s));
    }
    return specs;
  }

 private:
  const std::string& source_;
};

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
      RETURN_IF_ERROR(fn(col, kv.second, key + "." + col));
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

Result<ModelConfig> ParseNode(const YAML::Node& root, const std::string& model_name, const ConfigReader& r,
                              bool require_outputs) {
  if (!root.IsMap()) return r.Error("(top level)", "expected a mapping of keys, got " + ConfigReader::Describe(root));
  RETURN_IF_ERROR(r.OnlyKeys(root, "",
                             {"backend", "max_batch_size", "inputs", "outputs", "instances", "threads", "parameters",
                              "dynamic_batching", "version_policy", "warmup", "transforms", "execution_timeout_ms"}));
  ModelConfig c;
  c.name = model_name;
  if (!root["backend"]) return r.Error("backend", "missing (name the backend plugin, e.g. 'backend: torchscript')");
  ASSIGN_OR_RETURN(c.backend, r.String(root["backend"], "backend"));
  for (char ch : c.backend) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_')) {
      return r.Error("backend", "expected a plugin name of letters, digits and '_'");
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
  ASSIGN_OR_RETURN(c.inputs, r.Specs(root["inputs"], "inputs", true));
  ASSIGN_OR_RETURN(c.outputs, r.Specs(root["outputs"], "outputs", false));
  if (c.outputs.empty() && require_outputs) return r.Error("outputs", "expected at least one output");
  if (const YAML::Node& p = root["parameters"]; p && !p.IsNull()) {
    if (!p.IsMap())
      return r.Error("parameters", "expected a mapping of names to values, got " + ConfigReader::Describe(p));
    for (const auto& kv : p) {
      std::string k = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      if (!kv.second.IsScalar())
        return r.Error("parameters." + k, "expected a scalar value, got " + ConfigReader::Describe(kv.second));
      c.parameters[k] = kv.second.Scalar();
    }
  }
  if (const YAML::Node& vp = root["version_policy"]; vp) {
    ASSIGN_OR_RETURN(c.version_policy, ParseVersionPolicy(vp, r));
  }
  if (const YAML::Node& w = root["warmup"]; w) {
    if (!w.IsMap()) return r.Error("warmup", "expected a mapping {requests: N}, got " + ConfigReader::Describe(w));
    RETURN_IF_ERROR(r.OnlyKeys(w, "warmup", {"requests"}));
    if (w["requests"]) {
      ASSIGN_OR_RETURN(c.warmup_requests, r.Int(w["requests"], "warmup.requests", 0, 10000));
    }
  }
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
