#include "deploy_command.h"

#include <filesystem>
#include <iostream>
#include <memory>

#include "common/file_util.h"
#include "deploy/manifests.h"

namespace berth {
namespace {

void CommonFlags(CLI::App* app, DeployOptions* o, std::string* out) {
  app->add_option("--image", o->image, "The image berth build made (its -t reference)")->required();
  app->add_option("--model-repository", o->model_repository, "The repository the image was built from")->required();
  app->add_option("--name", o->name, "Name of the objects (default: from the image's name)");
  app->add_option("--namespace", o->namespace_name, "Namespace (default: none, kubectl's current one)");
  app->add_option("--cpu", o->cpu, "CPU request = limit (default: the models' instances x threads, at least 1)");
  app->add_option("--memory", o->memory, "Memory request = limit (default: 256Mi + 2x the model files)");
  app->add_option("-o,--output", *out, "A directory to write NAME.yaml into, or - for stdout")->capture_default_str();
}

// --ui on|off for the served containers: off unless asked (a production pod answers the API only).
void UiFlag(CLI::App* app, DeployOptions* o) {
  app->add_option_function<std::string>(
         "--ui", [o](const std::string& v) { o->ui = v == "on"; },
         "The web UI in the containers (berth serve --ui): on or off (default off)")
      ->check(CLI::IsMember({"on", "off"}));
}

// The autoscaler's and shutdown's flags of k8s and kserve.
void ServingFlags(CLI::App* app, DeployOptions* o) {
  UiFlag(app, o);
  app->add_option("--env", o->env,
                  "NAME=VALUE in the container's environment (repeatable), e.g. a pipeline's MLP_URL=http://mlp:8000");
  app->add_option("--min-replicas", o->min_replicas, "Autoscaler minimum")->capture_default_str();
  app->add_option("--max-replicas", o->max_replicas, "Autoscaler maximum")->capture_default_str();
  app->add_option("--target-cpu-percent", o->target_cpu_percent, "Autoscaler CPU utilisation target")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{100}));
  app->add_option("--shutdown-grace-secs", o->shutdown_grace_secs, "berth serve's drain time")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{3600}));
  app->add_option("--prestop-secs", o->prestop_secs, "Delay before SIGTERM, for endpoints to drop the pod")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{600}));
}

}  // namespace

Subcommand AddDeployCommand(CLI::App& parent) {
  auto o = std::make_shared<DeployOptions>();
  auto out = std::make_shared<std::string>("-");
  auto* app =
      parent.add_subcommand("deploy", "Write Kubernetes, KServe or compose manifests for images berth build made");
  app->require_subcommand(1);
  auto* k8s = app->add_subcommand("k8s", "Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget");
  CommonFlags(k8s, o.get(), out.get());
  k8s->add_option("--replicas", o->replicas, "Replicas to start with")->capture_default_str();
  ServingFlags(k8s, o.get());
  k8s->add_option("--target-queue-depth", o->target_queue_depth,
                  "Also scale on berth_queue_depth per pod (prometheus-adapter; its rule is written as a ConfigMap)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  k8s->add_option("--token-secret", o->token_secret,
                  "A Secret with keys admin-token and inference-token, mounted read-only (never in env)");
  auto* kserve = app->add_subcommand("kserve", "A KServe ServingRuntime and an InferenceService using it");
  CommonFlags(kserve, o.get(), out.get());
  kserve->add_option("--storage-uri", o->storage_uri,
                     "The InferenceService's storageUri (a repository, or one model's directory); default: the "
                     "models in the image");
  ServingFlags(kserve, o.get());
  auto* compose = app->add_subcommand("compose", "A compose file: one service per image, pipelines wired to them");
  compose->add_option("--image", o->images, "An image berth build made (repeat: one service each)")->required();
  compose
      ->add_option("--model-repository", o->model_repositories,
                   "The repository each --image was built from, in the same order")
      ->required();
  compose->add_option("--publish", o->publish,
                      "SERVICE=[ADDRESS:]PORT on the host (repeatable; default: services no other calls, "
                      "127.0.0.1:8000, :8100, ...)");
  compose->add_option("--cpu", o->cpu, "CPU limit of every service (default: its models' instances x threads)");
  compose->add_option("--memory", o->memory, "Memory limit of every service (default: 256Mi + 2x the model files)");
  UiFlag(compose, o.get());
  compose->add_option("--shutdown-grace-secs", o->shutdown_grace_secs, "berth serve's drain time")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{3600}));
  compose->add_option("-o,--output", *out, "A directory to write compose.yaml into, or - for stdout")
      ->capture_default_str();
  auto* job = app->add_subcommand("job", "An Indexed Job running berth batch --shard over a shared volume");
  CommonFlags(job, o.get(), out.get());
  job->add_option("--model", o->model, "The model (or pipeline) to run")->required();
  job->add_option("--in", o->in, "Input file, in the data volume (relative to --data-mount, or absolute)")->required();
  job->add_option("--out", o->out, "Output file, in the data volume")->required();
  job->add_option("--shards", o->shards, "N: pods, each one shard")->required();
  job->add_option("--parallelism", o->parallelism, "Shards running at once (default: all)");
  job->add_option("--data-claim", o->data_claim, "PersistentVolumeClaim holding --in and --out");
  job->add_option("--data-host-path", o->data_host_path, "Or: a host directory holding them");
  job->add_option("--data-mount", o->data_mount, "Where the volume is mounted")->capture_default_str();
  job->add_option("--max-rejects", o->max_rejects, "Rejected rows a shard may have before its index fails")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, INT64_MAX));
  return {app, [o, out, k8s, kserve, compose]() {
            Result<std::string> yaml = k8s->parsed()       ? KubernetesManifests(*o)
                                       : kserve->parsed()  ? KServeManifests(*o)
                                       : compose->parsed() ? ComposeFile(*o)
                                                           : BatchJobManifest(*o);
            if (!yaml.ok()) {
              std::cerr << "berth deploy: " << yaml.status().message() << "\n";
              return 1;
            }
            if (*out == "-") {
              std::cout << *yaml;
              return 0;
            }
            std::string name = o->name;
            if (compose->parsed()) {
              name = "compose";
            } else if (name.empty()) {
              name = DefaultName(o->image) + (k8s->parsed() ? "" : kserve->parsed() ? "-kserve" : "-batch");
            }
            std::string path = (std::filesystem::path(*out) / (name + ".yaml")).string();
            Status s = WriteFileAtomically(path, *yaml, Durability::kReplaceOnly);
            if (!s.ok()) {
              std::cerr << "berth deploy: " << s.message() << "\n";
              return 1;
            }
            std::cerr << "berth deploy: wrote " << path << "\n";
            return 0;
          }};
}

}  // namespace berth
