// `berth deploy kserve`: berth as a KServe serving runtime. A ServingRuntime
// (the container, the model formats it serves, v2 over HTTP and gRPC) and an
// InferenceService that uses it, in RawDeployment mode: a plain Deployment
// and Service, scaled by an HPA on CPU, with berth's own probes.
#include <map>
#include <string>

#include "deploy/manifests.h"
#include "deploy/pod_parts.h"
#include "deploy/yaml_doc.h"

namespace berth {
namespace {

// KServe's ports: HTTP on 8080, gRPC (h2c) on 8081, as its own model servers use.
constexpr int64_t kHttpPort = 8080, kGrpcPort = 8081, kMetricsPort = 8002;
constexpr const char* kKServeModels = "/mnt/models";  // where the storage initializer puts storageUri

// KServe's model format names for berth's backends; every runtime also serves the format "berth".
const char* FormatOf(const std::string& backend) {
  static const std::map<std::string, const char*> formats = {
      {"torchscript", "pytorch"}, {"xgboost", "xgboost"}, {"onnx", "onnx"}};
  auto it = formats.find(backend);
  return it == formats.end() ? nullptr : it->second;
}

YamlDoc Format(const char* name, const char* version, bool auto_select, int64_t priority) {
  YamlDoc f;
  f["name"] = name;
  f["version"] = version;
  f["autoSelect"] = auto_select;
  f["priority"] = priority;
  return f;
}

}  // namespace

Result<std::string> KServeManifests(const DeployOptions& o) {
  RETURN_IF_ERROR(CheckImageAndRepository(o));
  const std::string name = o.name.empty() ? DefaultName(o.image) : o.name;
  RETURN_IF_ERROR(CheckName(name, "--name"));
  if (o.min_replicas < 1 || o.max_replicas < o.min_replicas) {
    return InvalidArgument("--min-replicas, --max-replicas: expected 1 <= min <= max");
  }
  if (!o.storage_uri.empty() && o.storage_uri.find("://") == std::string::npos) {
    return InvalidArgument(
        "--storage-uri: expected a URI KServe's storage initializer reads (s3://, gs://, pvc://, ...)");
  }
  ASSIGN_OR_RETURN(RepositorySizing sizing, SizeRepository(o.model_repository));
  const std::string cpu = o.cpu.empty() ? sizing.Cpu() : o.cpu;
  const std::string memory = o.memory.empty() ? sizing.Memory() : o.memory;
  const std::string runtime_name = name + "-runtime";

  YamlDoc container;
  container["name"] = "kserve-container";  // the name KServe merges the InferenceService's predictor into
  container["image"] = o.image;
  container["command"] = YamlDoc::Strings({kBinary});
  // With a storageUri the models are what the storage initializer put in /mnt/models (a repository, or one
  // model's directory served under the InferenceService's name); without, the image's own.
  YamlDoc args = YamlDoc::Strings({"serve", "--model-repository", o.storage_uri.empty() ? kModels : kKServeModels});
  if (!o.storage_uri.empty()) {
    args.Add("--model-name");
    args.Add("{{.Name}}");
  }
  for (const std::string& a : {std::string("--http-port"), std::to_string(kHttpPort), std::string("--grpc-port"),
                               std::to_string(kGrpcPort), std::string("--metrics-port"), std::to_string(kMetricsPort),
                               std::string("--shutdown-grace-secs"), std::to_string(o.shutdown_grace_secs)}) {
    args.Add(a);
  }
  if (!o.ui) {
    args.Add("--ui");
    args.Add("off");
  }
  container["args"] = args;
  YamlDoc& ports = container["ports"] = YamlDoc::List();
  ports.Add(Port("http1", kHttpPort));  // Knative's names: http1 = HTTP/1.1, h2c = gRPC
  ports.Add(Port("h2c", kGrpcPort));
  ASSIGN_OR_RETURN(container["env"], ContainerEnv(o.env));
  container["resources"] = Resources(cpu, memory);
  // Ready only once every model has loaded (kserve#2882); slow loads get a budget of their own (kserve#3795).
  container["startupProbe"] = HttpProbe("/v2/health/ready", kHttpPort, 2, (sizing.StartupSeconds() + 1) / 2, 2);
  container["readinessProbe"] = HttpProbe("/v2/health/ready", kHttpPort, 5, 2, 2);
  container["livenessProbe"] = GrpcProbe(kGrpcPort, "live", 10, 3, 5);  // as deploy k8s: both ports probed
  if (o.prestop_secs > 0) container["lifecycle"]["preStop"]["sleep"]["seconds"] = o.prestop_secs;
  container["securityContext"] = ContainerSecurity();

  YamlDoc runtime;
  runtime["apiVersion"] = "serving.kserve.io/v1alpha1";
  runtime["kind"] = "ServingRuntime";
  runtime["metadata"] = Metadata(o.namespace_name, runtime_name, "model-server");
  YamlDoc& spec = runtime["spec"];
  spec["annotations"]["prometheus.kserve.io/port"] = std::to_string(kMetricsPort);
  spec["annotations"]["prometheus.kserve.io/path"] = "/metrics";
  spec["supportedModelFormats"] = YamlDoc::List();
  // Not auto-selected: the InferenceService names its runtime, and KServe refuses a second runtime in a
  // namespace auto-selecting the same format at the same priority (two berth deployments side by side).
  spec["supportedModelFormats"].Add(Format("berth", "1", false, 1));
  for (const std::string& backend : sizing.backends) {
    // Listed, not auto-selected: an InferenceService asking for "pytorch" alone keeps KServe's own runtime.
    if (const char* format = FormatOf(backend)) spec["supportedModelFormats"].Add(Format(format, "1", false, 2));
  }
  spec["protocolVersions"] = YamlDoc::Strings({"v2", "grpc-v2"});
  spec["multiModel"] = false;
  spec["containers"] = YamlDoc::List();
  spec["containers"].Add(container);

  YamlDoc isvc;
  isvc["apiVersion"] = "serving.kserve.io/v1beta1";
  isvc["kind"] = "InferenceService";
  isvc["metadata"] = Metadata(o.namespace_name, name, "model-server");
  YamlDoc& annotations = isvc["metadata"]["annotations"];
  annotations["serving.kserve.io/deploymentMode"] = "RawDeployment";
  annotations["serving.kserve.io/autoscalerClass"] = "hpa";
  annotations["serving.kserve.io/metric"] = "cpu";
  annotations["serving.kserve.io/targetUtilizationPercentage"] = std::to_string(o.target_cpu_percent);
  AddPrometheusAnnotations(annotations, kMetricsPort);
  YamlDoc& predictor = isvc["spec"]["predictor"];
  predictor["minReplicas"] = o.min_replicas;
  predictor["maxReplicas"] = o.max_replicas;
  predictor["automountServiceAccountToken"] = false;
  predictor["enableServiceLinks"] = false;
  predictor["terminationGracePeriodSeconds"] = o.prestop_secs + o.shutdown_grace_secs + 5;
  predictor["securityContext"] = PodSecurity();
  YamlDoc& model = predictor["model"];
  model["modelFormat"]["name"] = "berth";
  model["protocolVersion"] = "v2";
  model["runtime"] = runtime_name;
  if (!o.storage_uri.empty()) model["storageUri"] = o.storage_uri;

  return "# berth deploy kserve --image " + o.image + ": " + std::to_string(sizing.models) + " models, cpu " + cpu +
         ", memory " + memory + (o.storage_uri.empty() ? ", models in the image" : ", models from " + o.storage_uri) +
         "\n" + EmitYamlStream({runtime, isvc});
}

}  // namespace berth
