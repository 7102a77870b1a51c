// model.yaml of `kind: pipeline`: parsed, and checked as far as the file alone decides.
#include "common/pipeline_spec.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "common/config_reader.h"
#include "common/pipeline_condition.h"

namespace berth {
namespace {

constexpr int64_t kMaxBatchSizeLimit = 1 << 20;

bool IsStepName(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// "$in.NAME" or "STEP.TENSOR". The text is the file's, so errors describe it rather than quote it.
Result<TensorRef> ParseRef(const std::string& text, const std::string& key, const ConfigReader& r) {
  std::string t = Trim(text);
  size_t dot = t.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == t.size()) {
    return r.Error(key, "expected a tensor reference, $in.NAME or STEP.OUTPUT");
  }
  TensorRef ref;
  std::string head = t.substr(0, dot);
  ref.tensor = t.substr(dot + 1);
  if (head == "$in") return ref;
  if (!IsStepName(head)) return r.Error(key, "expected a tensor reference, $in.NAME or STEP.OUTPUT");
  ref.step = head;
  return ref;
}

bool IsVariableName(const std::string& s) {
  return !s.empty() && !std::isdigit(static_cast<unsigned char>(s[0])) && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// `text` as written, or "${NAME}" / "${NAME:-DEFAULT}" read from the environment (`*variable` = NAME).
Result<std::string> ExpandUrl(const std::string& text, const std::string& key, const ConfigReader& r,
                              std::string* variable) {
  if (text.rfind("${", 0) != 0) return text;
  if (text.back() != '}') return r.Error(key, "expected a URL, ${NAME} or ${NAME:-DEFAULT}");
  std::string inner = text.substr(2, text.size() - 3);
  size_t sep = inner.find(":-");
  std::string name = inner.substr(0, sep);
  if (!IsVariableName(name)) {
    return r.Error(key, "expected ${NAME} or ${NAME:-DEFAULT}, NAME of A-Z, 0-9 and '_' (not a digit first)");
  }
  *variable = name;
  if (const char* value = std::getenv(name.c_str()); value != nullptr && *value != '\0') return std::string(value);
  if (sep == std::string::npos) return r.Error(key, "the environment variable it names is not set (and no :-DEFAULT)");
  return inner.substr(sep + 2);
}

Result<RemoteModel> ParseRemote(const YAML::Node& n, const std::string& key, const ConfigReader& r) {
  if (!n.IsMap()) return r.Error(key, "expected a mapping {url, model}, got " + ConfigReader::Describe(n));
  RETURN_IF_ERROR(r.OnlyKeys(n, key, {"url", "model", "version", "protocol", "token_file"}));
  RemoteModel m;
  if (!n["url"]) return r.Error(key + ".url", "missing (the server's base URL, http://host:port)");
  ASSIGN_OR_RETURN(std::string url, r.String(n["url"], key + ".url"));
  ASSIGN_OR_RETURN(m.url, ExpandUrl(url, key + ".url", r, &m.url_variable));
  if (m.url.rfind("http://", 0) != 0 && m.url.rfind("https://", 0) != 0) {
    return r.Error(key + ".url", m.url_variable.empty()
                                     ? "expected an http:// or https:// URL"
                                     : "expected an http:// or https:// URL (from the environment variable it names)");
  }
  while (!m.url.empty() && m.url.back() == '/') m.url.pop_back();
  if (!n["model"]) return r.Error(key + ".model", "missing (the model on that server)");
  ASSIGN_OR_RETURN(m.model, r.String(n["model"], key + ".model"));
  if (n["version"]) {
    ASSIGN_OR_RETURN(m.version, r.Int(n["version"], key + ".version", 1, INT64_MAX));
  }
  if (n["protocol"]) {
    ASSIGN_OR_RETURN(std::string protocol, r.String(n["protocol"], key + ".protocol"));
    if (protocol != "http" && protocol != "grpc") return r.Error(key + ".protocol", "expected http or grpc");
    m.protocol = protocol == "grpc" ? RemoteProtocol::kGrpc : RemoteProtocol::kHttp;
  }
  if (n["token_file"]) {
    ASSIGN_OR_RETURN(m.token_file, r.String(n["token_file"], key + ".token_file"));
  }
  return m;
}

Result<PipelineStep> ParseStep(const YAML::Node& n, const std::string& key, const ConfigReader& r) {
  if (!n.IsMap()) return r.Error(key, "expected a mapping {name, model, inputs}, got " + ConfigReader::Describe(n));
  RETURN_IF_ERROR(r.OnlyKeys(
      n, key, {"name", "model", "version", "remote", "retries", "inputs", "when", "timeout_ms", "on_error"}));
  PipelineStep step;
  if (!n["name"]) return r.Error(key + ".name", "missing (every step needs a name)");
  ASSIGN_OR_RETURN(step.name, r.String(n["name"], key + ".name"));
  if (!IsStepName(step.name)) return r.Error(key + ".name", "expected letters, digits, '_' and '-' (at most 64)");
  if (step.name == "$in") return r.Error(key + ".name", "'$in' names the pipeline's inputs");
  if (n["model"] && n["remote"]) return r.Error(key, "give model (this repository) or remote, not both");
  if (const YAML::Node& rm = n["remote"]; rm) {
    ASSIGN_OR_RETURN(step.remote, ParseRemote(rm, key + ".remote", r));
    if (n["version"]) return r.Error(key + ".version", "a remote step's version goes in remote.version");
  } else {
    if (!n["model"])
      return r.Error(key + ".model", "missing (the model of this repository that the step runs, or remote)");
    ASSIGN_OR_RETURN(step.model, r.String(n["model"], key + ".model"));
    if (n["version"]) {
      ASSIGN_OR_RETURN(step.version, r.Int(n["version"], key + ".version", 1, INT64_MAX));
    }
    if (n["retries"]) return r.Error(key + ".retries", "only remote steps are retried");
  }
  if (n["retries"]) {
    ASSIGN_OR_RETURN(int64_t retries, r.Int(n["retries"], key + ".retries", 0, 10));
    step.retries = static_cast<int>(retries);
  }
  if (n["timeout_ms"]) {
    ASSIGN_OR_RETURN(step.timeout_ms, r.Int(n["timeout_ms"], key + ".timeout_ms", 1, 86'400'000));
  }
  if (n["on_error"]) {
    ASSIGN_OR_RETURN(std::string on_error, r.String(n["on_error"], key + ".on_error"));
    if (on_error != "fail" && on_error != "skip") return r.Error(key + ".on_error", "expected fail or skip");
    step.skip_on_error = on_error == "skip";
  }
  if (n["when"]) {
    ASSIGN_OR_RETURN(std::string text, r.String(n["when"], key + ".when"));
    Result<std::shared_ptr<const Condition>> when = Condition::Parse(text);
    if (!when.ok()) return r.Error(key + ".when", when.status().message());
    step.when = std::move(when).value();
  }
  const YAML::Node& in = n["inputs"];
  if (!in || !in.IsMap() || in.size() == 0) {
    return r.Error(key + ".inputs", "expected a mapping of the step model's inputs to tensors ({x: $in.x})");
  }
  for (const auto& kv : in) {
    std::string name = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if (name.empty()) return r.Error(key + ".inputs", "expected input names as keys");
    std::string k = key + ".inputs." + ConfigReader::KeyText(name);
    ASSIGN_OR_RETURN(std::string text, r.String(kv.second, k));
    ASSIGN_OR_RETURN(TensorRef ref, ParseRef(text, k, r));
    step.inputs.emplace_back(name, std::move(ref));
  }
  return step;
}

Result<PipelineOutput> ParseOutput(const YAML::Node& n, const std::string& key, const ConfigReader& r) {
  if (!n.IsMap()) return r.Error(key, "expected a mapping {name, from}, got " + ConfigReader::Describe(n));
  RETURN_IF_ERROR(r.OnlyKeys(n, key, {"name", "from", "optional", "labels"}));
  PipelineOutput out;
  if (!n["name"]) return r.Error(key + ".name", "missing (every output needs a name)");
  ASSIGN_OR_RETURN(out.name, r.String(n["name"], key + ".name"));
  if (!n["from"]) return r.Error(key + ".from", "missing (STEP.OUTPUT, or \"a.x ?? b.x\" for the first present)");
  ASSIGN_OR_RETURN(std::string from, r.String(n["from"], key + ".from"));
  size_t start = 0;
  for (;;) {
    size_t q = from.find("??", start);
    ASSIGN_OR_RETURN(TensorRef ref,
                     ParseRef(from.substr(start, q == std::string::npos ? q : q - start), key + ".from", r));
    out.from.push_back(std::move(ref));
    if (q == std::string::npos) break;
    start = q + 2;
  }
  if (n["optional"]) {
    ASSIGN_OR_RETURN(out.optional, r.Bool(n["optional"], key + ".optional"));
  }
  return out;
}

// Orders the steps so that each comes after the steps it reads from; an
// error names a step on a cycle.
}  // namespace

std::vector<TensorRef> StepReads(const PipelineStep& step) {
  std::vector<TensorRef> out;
  for (const auto& kv : step.inputs) out.push_back(kv.second);
  if (step.when) out.insert(out.end(), step.when->refs().begin(), step.when->refs().end());
  return out;
}

namespace {

Status SortSteps(std::vector<PipelineStep>* steps, const ConfigReader& r) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < steps->size(); ++i) index[(*steps)[i].name] = i;
  std::vector<int> state(steps->size(), 0);  // 0 new, 1 on the path, 2 done
  std::vector<PipelineStep> sorted;
  std::function<Status(size_t)> visit = [&](size_t i) -> Status {
    if (state[i] == 2) return Status::Ok();
    if (state[i] == 1) {
      return r.Error("steps[" + std::to_string(i) + "]",
                     "step '" + (*steps)[i].name + "' depends on itself (a cycle through its inputs)");
    }
    state[i] = 1;
    for (const TensorRef& ref : StepReads((*steps)[i])) {
      if (!ref.is_input()) RETURN_IF_ERROR(visit(index.at(ref.step)));
    }
    state[i] = 2;
    sorted.push_back((*steps)[i]);
    return Status::Ok();
  };
  for (size_t i = 0; i < steps->size(); ++i) RETURN_IF_ERROR(visit(i));
  *steps = std::move(sorted);
  return Status::Ok();
}

}  // namespace

Result<ModelConfig> ParsePipelineConfig(const YAML::Node& root, const std::string& model_name, ConfigReader& r) {
  RETURN_IF_ERROR(r.OnlyKeys(
      root, "", {"kind", "max_batch_size", "inputs", "outputs", "steps", "limits", "version_policy", "warmup"}));
  ModelConfig c;
  c.name = model_name;
  c.kind = kPipelineModelKind;
  c.backend = kPipelineModelKind;
  c.instances = 0;
  auto spec = std::make_shared<PipelineSpec>();
  if (root["max_batch_size"]) {
    ASSIGN_OR_RETURN(c.max_batch_size, r.Int(root["max_batch_size"], "max_batch_size", 0, kMaxBatchSizeLimit));
  }
  r.AllowOptionalInputs();
  ASSIGN_OR_RETURN(c.inputs, r.Specs(root["inputs"], "inputs", true));
  if (c.inputs.empty()) return r.Error("inputs", "expected at least one input");

  const YAML::Node& steps = root["steps"];
  if (!steps || !steps.IsSequence() || steps.size() == 0) {
    return r.Error("steps", "expected a list of steps ({name, model, inputs})");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < steps.size(); ++i) {
    std::string k = "steps[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(PipelineStep step, ParseStep(steps[i], k, r));
    if (!names.insert(step.name).second) return r.Error(k + ".name", "duplicate step name '" + step.name + "'");
    if (!step.remote && step.model == model_name) return r.Error(k + ".model", "a pipeline cannot run itself");
    spec->steps.push_back(std::move(step));
  }
  // References: each to a pipeline input or another step.
  for (size_t i = 0; i < spec->steps.size(); ++i) {
    std::vector<std::pair<std::string, TensorRef>> reads = spec->steps[i].inputs;
    if (spec->steps[i].when) {
      for (const TensorRef& ref : spec->steps[i].when->refs()) reads.emplace_back("", ref);
    }
    for (const auto& [name, ref] : reads) {
      std::string k = "steps[" + std::to_string(i) + "]" + (name.empty() ? ".when" : ".inputs." + name);
      if (ref.is_input() && !c.FindInput(ref.tensor)) {
        return r.Error(k, "the pipeline has no input '" + ref.tensor + "'");
      }
      if (!ref.is_input() && !names.count(ref.step)) return r.Error(k, "unknown step '" + ref.step + "'");
      if (ref.step == spec->steps[i].name) return r.Error(k, "a step cannot read its own output");
    }
  }

  const YAML::Node& outputs = root["outputs"];
  if (!outputs || !outputs.IsSequence() || outputs.size() == 0) {
    return r.Error("outputs", "expected a list of outputs ({name, from: STEP.OUTPUT})");
  }
  std::set<std::string> output_names;
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::string k = "outputs[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(PipelineOutput out, ParseOutput(outputs[i], k, r));
    if (!output_names.insert(out.name).second) return r.Error(k + ".name", "duplicate name '" + out.name + "'");
    for (const TensorRef& ref : out.from) {
      if (ref.is_input()) {
        if (!c.FindInput(ref.tensor)) return r.Error(k + ".from", "the pipeline has no input '" + ref.tensor + "'");
      } else if (!names.count(ref.step)) {
        return r.Error(k + ".from", "unknown step '" + ref.step + "'");
      }
    }
    TensorSpec placeholder;  // datatype and shape come from the step at load
    placeholder.name = out.name;
    if (const YAML::Node& labels = outputs[i]["labels"]; labels) {  // for the classification extension
      ASSIGN_OR_RETURN(placeholder.labels_file, r.String(labels, k + ".labels"));
      if (placeholder.labels_file.empty()) return r.Error(k + ".labels", "expected a file name");
    }
    c.outputs.push_back(std::move(placeholder));
    spec->outputs.push_back(std::move(out));
  }
  RETURN_IF_ERROR(SortSteps(&spec->steps, r));

  if (const YAML::Node& l = root["limits"]; l) {
    if (!l.IsMap()) return r.Error("limits", "expected a mapping {max_inflight, timeout_ms}");
    RETURN_IF_ERROR(r.OnlyKeys(l, "limits", {"max_inflight", "timeout_ms"}));
    if (l["max_inflight"]) {
      ASSIGN_OR_RETURN(spec->max_inflight, r.Int(l["max_inflight"], "limits.max_inflight", 1, 1 << 24));
    }
    if (l["timeout_ms"]) {
      ASSIGN_OR_RETURN(spec->timeout_ms, r.Int(l["timeout_ms"], "limits.timeout_ms", 1, 86'400'000));
    }
  }
  c.max_queue_size = spec->max_inflight;
  c.pipeline = std::move(spec);
  return c;
}

}  // namespace berth
