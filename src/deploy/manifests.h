// `berth deploy`: Kubernetes manifests for an image `berth build` made. The
// model repository the image was built from is read to name and size
// things (CPU from each model's instances x threads, memory and the startup
// probe's budget from the model files); the models themselves live in the
// image. The same inputs always give the same bytes.
//
// k8s: Deployment (restricted Pod Security, Guaranteed QoS, probes on the
//      v2 health endpoints, a preStop sleep that needs no shell, the CPU
//      limit passed to berth through the downward API, spread across
//      zones, Prometheus annotations) + Service + HorizontalPodAutoscaler
//      (autoscaling/v2, CPU) + PodDisruptionBudget (policy/v1).
// kserve: a ServingRuntime (berth as a KServe runtime, v2 and grpc-v2) and
//      an InferenceService using it, in RawDeployment mode (deploy/kserve.cc).
// compose: a compose file of one service per image, remote pipeline steps
//      pointed at the services that serve their models (deploy/compose.cc).
// job: an Indexed Job running `berth batch --shard $(JOB_COMPLETION_INDEX)/N`
//      over a shared volume, each index safe to run again (--resume, and a
//      second run of one index is refused while the first holds its lock).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "berth/status.h"
#include "deploy/pod_parts.h"
#include "repository/model_source.h"

namespace berth {

struct DeployOptions {
  std::string image;             // required: the reference `berth build -t` was given
  std::string model_repository;  // required: the repository the image holds
  std::string name;              // "" = the image's name (registry/team/NAME:tag), made a DNS label
  std::string namespace_name;    // "" = none (kubectl's current namespace)
  std::string cpu, memory;       // "" = derived from the repository (requests = limits)
  std::vector<std::string> env;  // NAME=VALUE for the container (k8s, kserve): a gateway's remote URLs, say
  // k8s
  int64_t replicas = 2, min_replicas = 2, max_replicas = 10;
  int64_t target_cpu_percent = 70;
  // > 0: the autoscaler also keeps berth_queue_depth (requests waiting, per pod) at this average, through
  // prometheus-adapter; the rule it needs is written beside the manifests as a ConfigMap.
  int64_t target_queue_depth = 0;
  std::string token_secret;  // a Secret with keys admin-token and inference-token, mounted read-only
  int64_t shutdown_grace_secs = 10;
  bool ui = false;  // the web UI in the served containers (`berth serve --ui`): off unless asked
  int64_t prestop_secs = 5;
  // job
  std::string model;    // the repository's model (or pipeline) to run
  std::string in, out;  // paths inside the data volume's mount
  int64_t shards = 0;
  int64_t parallelism = 0;     // 0 = shards
  std::string data_claim;      // a PersistentVolumeClaim holding the files, or
  std::string data_host_path;  // a host directory (single-node clusters, podman kube play)
  std::string data_mount = "/data";
  // Per shard: a shard with more rejected rows fails its index (retried, then the Job). berth batch's
  // default is 0; a large file with a few bad rows wants more.
  int64_t max_rejects = 0;
  // kserve
  std::string storage_uri;  // the InferenceService's storageUri ("" = serve the models in the image)
  // compose: one service per --image, with the --model-repository at the same position
  std::vector<std::string> images, model_repositories;
  std::vector<std::string> publish;  // SERVICE=[ADDRESS:]PORT; default: services no other calls, from 8000
};

// What the repository says about sizing.
struct RepositorySizing {
  double cpus = 0;           // sum over backend models of instances x threads
  uint64_t model_bytes = 0;  // the highest version's files, x instances
  int64_t models = 0;
  std::vector<std::string> backends;  // the backend models' plugins, sorted, once each
  std::string Cpu() const;            // the CPU quantity ("2", "500m"): at least 1
  std::string Memory() const;         // 256Mi + 2x the model bytes, in 64Mi steps
  int64_t StartupSeconds() const;     // 30 s + 1 s per 20 MB of model files
};
// `only`: size that model alone ("" = every model).
Result<RepositorySizing> SizeRepository(const std::string& model_repository, const std::string& only = "");

// The repository's models (`only`: that one), by name; an error names the model whose model.yaml is wrong.
Result<std::vector<ModelSource>> ReadModels(const std::string& model_repository, const std::string& only = "");

// --image and --model-repository given.
Status CheckImageAndRepository(const DeployOptions& options);

Result<std::string> KubernetesManifests(const DeployOptions& options);
Result<std::string> KServeManifests(const DeployOptions& options);
Result<std::string> ComposeFile(const DeployOptions& options);
Result<std::string> BatchJobManifest(const DeployOptions& options);

}  // namespace berth
