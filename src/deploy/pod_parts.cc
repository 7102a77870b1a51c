#include "deploy/pod_parts.h"

#include <cctype>

#include "common/cpu_quota.h"

namespace berth {

// "registry:5000/team/churn-model:1.2" -> "churn-model"; lower case, [a-z0-9-], at most 50 characters.
std::string DefaultName(const std::string& image) {
  std::string repo = image.substr(0, image.find('@'));
  size_t slash = repo.rfind('/');
  size_t colon = repo.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) repo = repo.substr(0, colon);
  repo = repo.substr(slash == std::string::npos ? 0 : slash + 1);
  std::string out;
  for (char c : repo) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out += (std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  while (!out.empty() && out.front() == '-') out.erase(out.begin());
  out = out.substr(0, 44);  // room for "-batch"
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.empty() || !std::isalpha(static_cast<unsigned char>(out.front()))) out = "berth-" + out;
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

Status CheckName(const std::string& name, const char* flag) {
  // DNS-1035 (a Service's name): a letter first.
  bool ok = !name.empty() && name.size() <= 50 && std::isalpha(static_cast<unsigned char>(name.front())) &&
            std::isalnum(static_cast<unsigned char>(name.back()));
  for (char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  if (!ok) {
    return InvalidArgument(std::string(flag) +
                           ": expected a DNS label (lower-case letters, digits and '-', a letter first, at most 50 "
                           "characters)");
  }
  return Status::Ok();
}

YamlDoc Labels(const std::string& name, const char* component) {
  YamlDoc l;
  l["app.kubernetes.io/name"] = name;
  l["app.kubernetes.io/component"] = component;
  l["app.kubernetes.io/managed-by"] = "berth";
  return l;
}

YamlDoc Metadata(const std::string& namespace_name, const std::string& name, const char* component) {
  YamlDoc m;
  m["name"] = name;
  if (!namespace_name.empty()) m["namespace"] = namespace_name;
  m["labels"] = Labels(name, component);
  return m;
}

YamlDoc Selector(const std::string& name) {
  YamlDoc s;
  s["matchLabels"]["app.kubernetes.io/name"] = name;
  return s;
}

// Restricted Pod Security: the pod's part, and the container's.
YamlDoc PodSecurity() {
  YamlDoc s;
  s["runAsNonRoot"] = true;
  s["runAsUser"] = kUid;
  s["runAsGroup"] = kUid;
  s["fsGroup"] = kUid;
  s["seccompProfile"]["type"] = "RuntimeDefault";
  return s;
}

YamlDoc ContainerSecurity() {
  YamlDoc s;
  s["allowPrivilegeEscalation"] = false;
  s["readOnlyRootFilesystem"] = true;
  s["runAsNonRoot"] = true;
  s["capabilities"]["drop"] = YamlDoc::Strings({"ALL"});
  return s;
}

YamlDoc Resources(const std::string& cpu, const std::string& memory) {
  YamlDoc r;
  for (const char* k : {"requests", "limits"}) {  // equal: Guaranteed QoS, no throttling surprises
    r[k]["cpu"] = cpu;
    r[k]["memory"] = memory;
  }
  return r;
}

// berth sizes its threads from the CPU limit (common/cpu_quota.h) as well as from the cgroup quota.
YamlDoc CpuLimitEnv() {
  YamlDoc e;
  e["name"] = kCpuLimitEnv;
  e["valueFrom"]["resourceFieldRef"]["resource"] = "limits.cpu";
  e["valueFrom"]["resourceFieldRef"]["divisor"] = "1m";
  return e;
}

Result<YamlDoc> ContainerEnv(const std::vector<std::string>& extra) {
  YamlDoc env = YamlDoc::List();
  env.Add(CpuLimitEnv());
  for (const std::string& e : extra) {
    size_t eq = e.find('=');
    std::string name = e.substr(0, eq);
    bool ok = eq != std::string::npos && !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
              name != kCpuLimitEnv;
    for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!ok) return InvalidArgument("--env: expected NAME=VALUE, NAME of letters, digits and '_' (not a digit first)");
    YamlDoc v;
    v["name"] = name;
    v["value"] = e.substr(eq + 1);
    env.Add(v);
  }
  return env;
}

YamlDoc HttpProbe(const char* path, const YamlDoc& port, int64_t period, int64_t failures, int64_t timeout) {
  YamlDoc p;
  p["httpGet"]["path"] = path;
  p["httpGet"]["port"] = port;
  p["periodSeconds"] = period;
  p["timeoutSeconds"] = timeout;
  p["failureThreshold"] = failures;
  return p;
}

YamlDoc GrpcProbe(int64_t port, const char* service, int64_t period, int64_t failures, int64_t timeout) {
  YamlDoc p;
  p["grpc"]["port"] = port;
  p["grpc"]["service"] = service;
  p["periodSeconds"] = period;
  p["timeoutSeconds"] = timeout;
  p["failureThreshold"] = failures;
  return p;
}

void AddPrometheusAnnotations(YamlDoc& annotations, int64_t port) {
  annotations["prometheus.io/scrape"] = "true";
  annotations["prometheus.io/port"] = std::to_string(port);
  annotations["prometheus.io/path"] = "/metrics";
}

YamlDoc Port(const char* name, int64_t port) {
  YamlDoc p;
  p["name"] = name;
  p["containerPort"] = port;
  p["protocol"] = "TCP";
  return p;
}

}  // namespace berth
