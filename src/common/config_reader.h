// Reading model.yaml's YAML nodes: every error names the file, the key and
// what was expected, and never quotes the file's text (a model.yaml could be
// any file the server can read). Internal to src/common (model_config.cc,
// pipeline_spec.cc).
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "berth/status.h"
#include "common/model_config.h"

namespace berth {

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

  Result<bool> Bool(const YAML::Node& n, const std::string& key) const {
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) return n.Scalar() == "true";
    return Error(key, "expected true or false, got " + Describe(n));
  }

  // Pipelines: inputs may be `optional: true`.
  void AllowOptionalInputs() { optional_inputs_ = true; }
  // Outputs may name `columns` (kind: transform).
  void AllowOutputColumns() { output_columns_ = true; }

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

  // A key as an error names it: only when it looks like one (a long or
  // multi-line key is file text, which errors never quote).
  static std::string KeyText(const std::string& k) {
    bool printable = std::all_of(k.begin(), k.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
    if (k.size() <= 64 && printable) return k;
    return "(a key of " + std::to_string(k.size()) + " bytes)";
  }

  // Fails on any key of `map` that is not in `allowed`.
  Status OnlyKeys(const YAML::Node& map, const std::string& where, const std::set<std::string>& allowed) const {
    for (const auto& kv : map) {
      std::string k = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      if (!allowed.count(k)) {
        k = KeyText(k);
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        return Error(where.empty() ? k : where + "." + k, "unknown key (expected one of: " + list + ")");
      }
    }
    return Status::Ok();
  }

  Result<TensorSpec> Spec(const YAML::Node& n, const std::string& key, bool is_input) const {
    if (!n.IsMap()) return Error(key, "expected a mapping {name, datatype, shape}, got " + Describe(n));
    if (is_input && optional_inputs_) {
      RETURN_IF_ERROR(OnlyKeys(n, key, {"name", "datatype", "shape", "columns", "optional"}));
    } else if (is_input) {
      RETURN_IF_ERROR(OnlyKeys(n, key, {"name", "datatype", "shape", "columns"}));
    } else if (output_columns_) {
      RETURN_IF_ERROR(OnlyKeys(n, key, {"name", "datatype", "shape", "columns", "labels"}));
    } else {
      RETURN_IF_ERROR(OnlyKeys(n, key, {"name", "datatype", "shape", "labels"}));
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
    if (const YAML::Node& opt = n["optional"]; opt) {
      ASSIGN_OR_RETURN(spec.optional, Bool(opt, key + ".optional"));
    }
    if (const YAML::Node& labels = n["labels"]; labels) {
      ASSIGN_OR_RETURN(spec.labels_file, String(labels, key + ".labels"));
      if (spec.labels_file.empty()) return Error(key + ".labels", "expected a file name");
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
  bool optional_inputs_ = false;
  bool output_columns_ = false;
};

// The rest of a `kind: pipeline` model.yaml (common/pipeline_spec.cc); the
// caller parses version_policy and warmup.
Result<ModelConfig> ParsePipelineConfig(const YAML::Node& root, const std::string& model_name, ConfigReader& r);

}  // namespace berth
