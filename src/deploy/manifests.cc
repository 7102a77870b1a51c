#include "deploy/manifests.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <tuple>
#include <vector>

#include "common/cpu_quota.h"
#include "deploy/yaml_doc.h"
#include "repository/model_source.h"

namespace fs = std::filesystem;

namespace berth {
namespace {

constexpr int64_t kUid = 65532;  // the images' nonroot user (image/image_builder.cc)
constexpr const char* kBinary = "/usr/bin/berth";
constexpr const char* kModels = "/models";
constexpr const char* kSecretsDir = "/var/run/secrets/berth";

// "registry:5000/team/churn-model:1.2" -> "churn-model"; lower case, [a-z0-9-], at most 50 characters.
std::string NameFromImageText(const std::string& image) {
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

YamlDoc Metadata(const DeployOptions& o, const std::string& name, const char* component) {
  YamlDoc m;
  m["name"] = name;
  if (!o.namespace_name.empty()) m["namespace"] = o.namespace_name;
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

YamlDoc HttpProbe(const char* path, int64_t period, int64_t failures, int64_t timeout) {
  YamlDoc p;
  p["httpGet"]["path"] = path;
  p["httpGet"]["port"] = "http";
  p["periodSeconds"] = period;
  p["timeoutSeconds"] = timeout;
  p["failureThreshold"] = failures;
  return p;
}

YamlDoc Port(const char* name, int64_t port) {
  YamlDoc p;
  p["name"] = name;
  p["containerPort"] = port;
  p["protocol"] = "TCP";
  return p;
}

Result<std::pair<std::string, std::string>> CpuAndMemory(const DeployOptions& o, const std::string& only) {
  ASSIGN_OR_RETURN(RepositorySizing sizing, SizeRepository(o.model_repository, only));
  return std::make_pair(o.cpu.empty() ? sizing.Cpu() : o.cpu, o.memory.empty() ? sizing.Memory() : o.memory);
}

Status CheckCommon(const DeployOptions& o) {
  if (o.image.empty()) return InvalidArgument("--image: required (the reference given to berth build -t)");
  if (o.model_repository.empty()) return InvalidArgument("--model-repository: required (the image's models)");
  return Status::Ok();
}

}  // namespace

std::string DefaultName(const std::string& image) { return NameFromImageText(image); }

std::string RepositorySizing::Cpu() const {
  double c = std::max(1.0, cpus);
  if (c == std::floor(c)) return std::to_string(static_cast<int64_t>(c));
  return std::to_string(static_cast<int64_t>(std::ceil(c * 1000))) + "m";
}

std::string RepositorySizing::Memory() const {
  uint64_t mib = 256 + (2 * model_bytes + (1u << 20) - 1) / (1u << 20);
  mib = (mib + 63) / 64 * 64;
  return std::to_string(mib) + "Mi";
}

int64_t RepositorySizing::StartupSeconds() const { return 30 + static_cast<int64_t>(model_bytes / 20'000'000); }

Result<RepositorySizing> SizeRepository(const std::string& root, const std::string& only) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return NotFound("--model-repository " + root + ": not a directory");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::string name = e.path().filename().string();
    if (name[0] != '.' && IsValidModelName(name) && e.is_directory(ec) && (only.empty() || name == only)) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  RepositorySizing s;
  for (const std::string& name : names) {
    Result<ModelSource> source = ReadModelSource(root + "/" + name, name);
    if (!source.ok()) return source.status().WithContext("model '" + name + "'");
    ++s.models;
    if (source->config.kind != kBackendModelKind) continue;  // pipelines and transforms run on their steps' CPUs
    s.cpus += source->config.instances * source->config.threads;
    if (source->versions.empty()) continue;
    uint64_t bytes = 0;
    for (const auto& f : fs::recursive_directory_iterator(source->version_dir(source->versions.rbegin()->first), ec)) {
      if (f.is_regular_file(ec)) bytes += f.file_size(ec);
    }
    s.model_bytes += bytes * static_cast<uint64_t>(source->config.instances);
  }
  if (ec) return FailedPrecondition("--model-repository " + root + ": " + ec.message());
  if (s.models == 0) return NotFound("--model-repository " + root + ": holds no model directories");
  return s;
}

Result<std::string> KubernetesManifests(const DeployOptions& o) {
  RETURN_IF_ERROR(CheckCommon(o));
  const std::string name = o.name.empty() ? DefaultName(o.image) : o.name;
  RETURN_IF_ERROR(CheckName(name, "--name"));
  if (o.min_replicas < 1 || o.max_replicas < o.min_replicas || o.replicas < o.min_replicas ||
      o.replicas > o.max_replicas) {
    return InvalidArgument("--replicas, --min-replicas, --max-replicas: expected 1 <= min <= replicas <= max");
  }
  ASSIGN_OR_RETURN(RepositorySizing sizing, SizeRepository(o.model_repository));
  const std::string cpu = o.cpu.empty() ? sizing.Cpu() : o.cpu;
  const std::string memory = o.memory.empty() ? sizing.Memory() : o.memory;

  YamlDoc container;
  container["name"] = "berth";
  container["image"] = o.image;
  YamlDoc args = YamlDoc::Strings({"--shutdown-grace-secs", std::to_string(o.shutdown_grace_secs)});
  if (!o.token_secret.empty()) {
    for (const char* a : {"--admin-token-file", "/var/run/secrets/berth/admin-token", "--auth-token-file",
                          "/var/run/secrets/berth/inference-token"}) {
      args.Add(a);
    }
  }
  container["args"] = args;
  YamlDoc& ports = container["ports"] = YamlDoc::List();
  ports.Add(Port("http", 8000));
  ports.Add(Port("grpc", 8001));
  ports.Add(Port("metrics", 8002));
  container["env"] = YamlDoc::List();
  container["env"].Add(CpuLimitEnv());
  container["resources"] = Resources(cpu, memory);
  // Ready only once every model has loaded (kserve#2882); slow loads get a budget of their own (kserve#3795).
  container["startupProbe"] = HttpProbe("/v2/health/ready", 2, (sizing.StartupSeconds() + 1) / 2, 2);
  container["readinessProbe"] = HttpProbe("/v2/health/ready", 5, 2, 2);
  container["livenessProbe"] = HttpProbe("/v2/health/live", 10, 3, 5);
  // Endpoints drop the pod before SIGTERM arrives; then berth answers not-ready and drains.
  // (The kubelet's sleep action needs Kubernetes 1.30; 0 seconds is refused before 1.32, so it is left out.)
  if (o.prestop_secs > 0) container["lifecycle"]["preStop"]["sleep"]["seconds"] = o.prestop_secs;
  container["securityContext"] = ContainerSecurity();
  if (!o.token_secret.empty()) {
    YamlDoc mount;
    mount["name"] = "tokens";
    mount["mountPath"] = kSecretsDir;
    mount["readOnly"] = true;
    container["volumeMounts"] = YamlDoc::List();
    container["volumeMounts"].Add(mount);
  }

  YamlDoc pod;
  pod["automountServiceAccountToken"] = false;
  pod["enableServiceLinks"] = false;
  pod["terminationGracePeriodSeconds"] = o.prestop_secs + o.shutdown_grace_secs + 5;
  pod["securityContext"] = PodSecurity();
  YamlDoc spread;
  spread["maxSkew"] = 1;
  spread["topologyKey"] = "topology.kubernetes.io/zone";
  spread["whenUnsatisfiable"] = "ScheduleAnyway";
  spread["labelSelector"] = Selector(name);
  pod["topologySpreadConstraints"] = YamlDoc::List();
  pod["topologySpreadConstraints"].Add(spread);
  pod["containers"] = YamlDoc::List();
  pod["containers"].Add(container);
  if (!o.token_secret.empty()) {
    YamlDoc volume;
    volume["name"] = "tokens";
    volume["secret"]["secretName"] = o.token_secret;
    volume["secret"]["defaultMode"] = 0440;
    pod["volumes"] = YamlDoc::List();
    pod["volumes"].Add(volume);
  }

  YamlDoc deployment;
  deployment["apiVersion"] = "apps/v1";
  deployment["kind"] = "Deployment";
  deployment["metadata"] = Metadata(o, name, "model-server");
  deployment["spec"]["replicas"] = o.replicas;
  deployment["spec"]["selector"] = Selector(name);
  deployment["spec"]["strategy"]["type"] = "RollingUpdate";
  deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = 0;
  deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 1;
  YamlDoc& meta = deployment["spec"]["template"]["metadata"];
  meta["labels"] = Labels(name, "model-server");
  meta["annotations"]["prometheus.io/scrape"] = "true";
  meta["annotations"]["prometheus.io/port"] = "8002";
  meta["annotations"]["prometheus.io/path"] = "/metrics";
  deployment["spec"]["template"]["spec"] = pod;

  YamlDoc service;
  service["apiVersion"] = "v1";
  service["kind"] = "Service";
  service["metadata"] = Metadata(o, name, "model-server");
  service["spec"]["type"] = "ClusterIP";
  service["spec"]["selector"]["app.kubernetes.io/name"] = name;
  YamlDoc& sports = service["spec"]["ports"] = YamlDoc::List();
  for (auto [port_name, port, app] : {std::tuple<const char*, int64_t, const char*>{"http", 8000, "http"},
                                      {"grpc", 8001, "kubernetes.io/h2c"},
                                      {"metrics", 8002, "http"}}) {
    YamlDoc p;
    p["name"] = port_name;
    p["port"] = port;
    p["targetPort"] = port_name;
    p["protocol"] = "TCP";
    p["appProtocol"] = app;
    sports.Add(p);
  }

  YamlDoc hpa;
  hpa["apiVersion"] = "autoscaling/v2";
  hpa["kind"] = "HorizontalPodAutoscaler";
  hpa["metadata"] = Metadata(o, name, "model-server");
  hpa["spec"]["scaleTargetRef"]["apiVersion"] = "apps/v1";
  hpa["spec"]["scaleTargetRef"]["kind"] = "Deployment";
  hpa["spec"]["scaleTargetRef"]["name"] = name;
  hpa["spec"]["minReplicas"] = o.min_replicas;
  hpa["spec"]["maxReplicas"] = o.max_replicas;
  YamlDoc metric;
  metric["type"] = "Resource";
  metric["resource"]["name"] = "cpu";
  metric["resource"]["target"]["type"] = "Utilization";
  metric["resource"]["target"]["averageUtilization"] = o.target_cpu_percent;
  hpa["spec"]["metrics"] = YamlDoc::List();
  hpa["spec"]["metrics"].Add(metric);
  hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = 300;

  YamlDoc pdb;
  pdb["apiVersion"] = "policy/v1";
  pdb["kind"] = "PodDisruptionBudget";
  pdb["metadata"] = Metadata(o, name, "model-server");
  pdb["spec"]["maxUnavailable"] = 1;
  pdb["spec"]["selector"] = Selector(name);

  return "# berth deploy k8s --image " + o.image + ": " + std::to_string(sizing.models) + " models, cpu " + cpu +
         ", memory " + memory + "\n" + EmitYamlStream({deployment, service, hpa, pdb});
}

Result<std::string> BatchJobManifest(const DeployOptions& o) {
  RETURN_IF_ERROR(CheckCommon(o));
  if (o.model.empty() || !IsValidModelName(o.model)) return InvalidArgument("--model: required, a model's name");
  if (!fs::is_directory(o.model_repository + "/" + o.model)) {
    return NotFound("--model " + o.model + ": not a model of --model-repository " + o.model_repository);
  }
  if (o.in.empty() || o.out.empty()) return InvalidArgument("--in, --out: required (paths in the data volume)");
  if (o.shards < 1 || o.shards > 100000) return InvalidArgument("--shards: expected 1 .. 100000");
  if (o.data_claim.empty() == o.data_host_path.empty()) {
    return InvalidArgument("--data-claim or --data-host-path: exactly one (where --in and --out live)");
  }
  const std::string name = o.name.empty() ? DefaultName(o.image) + "-batch" : o.name;
  RETURN_IF_ERROR(CheckName(name, "--name"));
  // One model runs; a pipeline runs its step models too, so it is sized like the whole repository.
  ASSIGN_OR_RETURN(ModelSource run, ReadModelSource(o.model_repository + "/" + o.model, o.model));
  ASSIGN_OR_RETURN(auto resources, CpuAndMemory(o, run.config.kind == kPipelineModelKind ? "" : o.model));
  auto in_volume = [&](const std::string& p) { return p.front() == '/' ? p : o.data_mount + "/" + p; };

  YamlDoc container;
  container["name"] = "berth-batch";
  container["image"] = o.image;
  container["command"] = YamlDoc::Strings({kBinary});
  // Kubernetes expands $(JOB_COMPLETION_INDEX), set in every pod of an Indexed Job: no shell needed.
  container["args"] =
      YamlDoc::Strings({"batch", std::string(kModels) + "/" + o.model, "--in", in_volume(o.in), "--out",
                        in_volume(o.out), "--shard", "$(JOB_COMPLETION_INDEX)/" + std::to_string(o.shards), "--resume",
                        "--max-rejects", std::to_string(o.max_rejects), "--progress", "json"});
  container["env"] = YamlDoc::List();
  container["env"].Add(CpuLimitEnv());
  container["resources"] = Resources(resources.first, resources.second);
  container["securityContext"] = ContainerSecurity();
  YamlDoc mount;
  mount["name"] = "data";
  mount["mountPath"] = o.data_mount;
  container["volumeMounts"] = YamlDoc::List();
  container["volumeMounts"].Add(mount);

  YamlDoc volume;
  volume["name"] = "data";
  if (!o.data_claim.empty()) {
    volume["persistentVolumeClaim"]["claimName"] = o.data_claim;
  } else {
    volume["hostPath"]["path"] = o.data_host_path;
    volume["hostPath"]["type"] = "Directory";
  }

  YamlDoc job;
  job["apiVersion"] = "batch/v1";
  job["kind"] = "Job";
  job["metadata"] = Metadata(o, name, "batch");
  job["spec"]["completionMode"] = "Indexed";
  job["spec"]["completions"] = o.shards;
  job["spec"]["parallelism"] = o.parallelism > 0 ? o.parallelism : o.shards;
  job["spec"]["backoffLimitPerIndex"] = 3;  // a failed shard is retried on its own; --resume continues it
  job["spec"]["maxFailedIndexes"] = 0;
  job["spec"]["template"]["metadata"]["labels"] = Labels(name, "batch");
  YamlDoc& pod = job["spec"]["template"]["spec"];
  pod["restartPolicy"] = "Never";
  pod["automountServiceAccountToken"] = false;
  pod["enableServiceLinks"] = false;
  pod["securityContext"] = PodSecurity();
  pod["containers"] = YamlDoc::List();
  pod["containers"].Add(container);
  pod["volumes"] = YamlDoc::List();
  pod["volumes"].Add(volume);
  return "# berth deploy job: " + std::to_string(o.shards) + " shards of " + o.in +
         "; when every index has "
         "succeeded:\n#   berth batch merge --out " +
         in_volume(o.out) + " --shards " + std::to_string(o.shards) + "\n" + job.Emit();
}

}  // namespace berth
