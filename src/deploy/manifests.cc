#include "deploy/manifests.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <tuple>
#include <vector>

#include "common/cpu_quota.h"
#include "deploy/pod_parts.h"
#include "deploy/yaml_doc.h"
#include "repository/model_source.h"

namespace fs = std::filesystem;

namespace berth {
namespace {

Result<std::pair<std::string, std::string>> CpuAndMemory(const DeployOptions& o, const std::string& only) {
  ASSIGN_OR_RETURN(RepositorySizing sizing, SizeRepository(o.model_repository, only));
  return std::make_pair(o.cpu.empty() ? sizing.Cpu() : o.cpu, o.memory.empty() ? sizing.Memory() : o.memory);
}

// The prometheus-adapter rule that turns berth's scraped berth_queue_depth gauge (summed over a pod's models)
// into the Pods metric the autoscaler reads; a ConfigMap to merge into the adapter's own configuration.
// It assumes the usual pod scrape job, which labels series with namespace and pod.
YamlDoc AdapterRule(const DeployOptions& o, const std::string& name) {
  YamlDoc rule;
  rule["seriesQuery"] = "berth_queue_depth{namespace!=\"\",pod!=\"\"}";
  rule["resources"]["overrides"]["namespace"]["resource"] = "namespace";
  rule["resources"]["overrides"]["pod"]["resource"] = "pod";
  rule["name"]["matches"] = "^berth_queue_depth$";
  rule["name"]["as"] = "berth_queue_depth";
  rule["metricsQuery"] = "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)";
  YamlDoc config;
  config["rules"] = YamlDoc::List();
  config["rules"].Add(rule);
  YamlDoc map;
  map["apiVersion"] = "v1";
  map["kind"] = "ConfigMap";
  map["metadata"] = Metadata(o.namespace_name, name + "-prometheus-adapter-rule", "autoscaling");
  map["data"]["config.yaml"] = config.Emit();
  return map;
}

}  // namespace

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

Result<std::vector<ModelSource>> ReadModels(const std::string& root, const std::string& only) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return NotFound("--model-repository " + root + ": not a directory");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::string name = e.path().filename().string();
    if (name[0] != '.' && IsValidModelName(name) && e.is_directory(ec) && (only.empty() || name == only)) {
      names.push_back(name);
    }
  }
  if (ec) return FailedPrecondition("--model-repository " + root + ": " + ec.message());
  std::sort(names.begin(), names.end());
  std::vector<ModelSource> models;
  for (const std::string& name : names) {
    Result<ModelSource> source = ReadModelSource(root + "/" + name, name);
    if (!source.ok()) return source.status().WithContext("model '" + name + "'");
    models.push_back(std::move(source).value());
  }
  if (models.empty()) return NotFound("--model-repository " + root + ": holds no model directories");
  return models;
}

Result<RepositorySizing> SizeRepository(const std::string& root, const std::string& only) {
  ASSIGN_OR_RETURN(std::vector<ModelSource> models, ReadModels(root, only));
  RepositorySizing s;
  std::error_code ec;
  for (const ModelSource& source : models) {
    ++s.models;
    if (source.config.kind != kBackendModelKind) continue;  // pipelines and transforms run on their steps' CPUs
    s.cpus += source.config.instances * source.config.threads;
    if (std::find(s.backends.begin(), s.backends.end(), source.config.backend) == s.backends.end()) {
      s.backends.push_back(source.config.backend);
    }
    if (source.versions.empty()) continue;
    uint64_t bytes = 0;
    for (const auto& f : fs::recursive_directory_iterator(source.version_dir(source.versions.rbegin()->first), ec)) {
      if (f.is_regular_file(ec)) bytes += f.file_size(ec);
    }
    s.model_bytes += bytes * static_cast<uint64_t>(source.config.instances);
  }
  if (ec) return FailedPrecondition("--model-repository " + root + ": " + ec.message());
  std::sort(s.backends.begin(), s.backends.end());
  return s;
}

Status CheckImageAndRepository(const DeployOptions& o) {
  if (o.image.empty()) return InvalidArgument("--image: required (the reference given to berth build -t)");
  if (o.model_repository.empty()) return InvalidArgument("--model-repository: required (the image's models)");
  return Status::Ok();
}

Result<std::string> KubernetesManifests(const DeployOptions& o) {
  RETURN_IF_ERROR(CheckImageAndRepository(o));
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
  if (!o.ui) {
    args.Add("--ui");
    args.Add("off");
  }
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
  ASSIGN_OR_RETURN(container["env"], ContainerEnv(o.env));
  container["resources"] = Resources(cpu, memory);
  // Ready only once every model has loaded (kserve#2882); slow loads get a budget of their own (kserve#3795).
  container["startupProbe"] = HttpProbe("/v2/health/ready", "http", 2, (sizing.StartupSeconds() + 1) / 2, 2);
  container["readinessProbe"] = HttpProbe("/v2/health/ready", "http", 5, 2, 2);
  // Liveness through gRPC health: the gRPC port answers too (the HTTP port has readiness).
  container["livenessProbe"] = GrpcProbe(8001, "live", 10, 3, 5);
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
  deployment["metadata"] = Metadata(o.namespace_name, name, "model-server");
  deployment["spec"]["replicas"] = o.replicas;
  deployment["spec"]["selector"] = Selector(name);
  deployment["spec"]["strategy"]["type"] = "RollingUpdate";
  deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = 0;
  deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 1;
  YamlDoc& meta = deployment["spec"]["template"]["metadata"];
  meta["labels"] = Labels(name, "model-server");
  AddPrometheusAnnotations(meta["annotations"], 8002);
  deployment["spec"]["template"]["spec"] = pod;

  YamlDoc service;
  service["apiVersion"] = "v1";
  service["kind"] = "Service";
  service["metadata"] = Metadata(o.namespace_name, name, "model-server");
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
  hpa["metadata"] = Metadata(o.namespace_name, name, "model-server");
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
  std::vector<YamlDoc> docs;
  if (o.target_queue_depth > 0) {
    YamlDoc queue;
    queue["type"] = "Pods";
    queue["pods"]["metric"]["name"] = "berth_queue_depth";
    queue["pods"]["target"]["type"] = "AverageValue";
    queue["pods"]["target"]["averageValue"] = std::to_string(o.target_queue_depth);
    hpa["spec"]["metrics"].Add(queue);
  }
  hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = 300;

  YamlDoc pdb;
  pdb["apiVersion"] = "policy/v1";
  pdb["kind"] = "PodDisruptionBudget";
  pdb["metadata"] = Metadata(o.namespace_name, name, "model-server");
  pdb["spec"]["maxUnavailable"] = 1;
  pdb["spec"]["selector"] = Selector(name);
  docs = {deployment, service, hpa, pdb};
  if (o.target_queue_depth > 0) docs.push_back(AdapterRule(o, name));

  return "# berth deploy k8s --image " + o.image + ": " + std::to_string(sizing.models) + " models, cpu " + cpu +
         ", memory " + memory + "\n" + EmitYamlStream(docs);
}

Result<std::string> BatchJobManifest(const DeployOptions& o) {
  RETURN_IF_ERROR(CheckImageAndRepository(o));
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
  job["metadata"] = Metadata(o.namespace_name, name, "batch");
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
