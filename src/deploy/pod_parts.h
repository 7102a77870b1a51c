// The pieces every `berth deploy` generator writes the same way: names,
// labels, restricted Pod Security, Guaranteed resources, the CPU limit
// passed to berth, probes and ports.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "berth/status.h"
#include "deploy/yaml_doc.h"

namespace berth {

constexpr int64_t kUid = 65532;  // the images' nonroot user (image/image_builder.cc)
constexpr const char* kBinary = "/usr/bin/berth";
constexpr const char* kModels = "/models";
constexpr const char* kSecretsDir = "/var/run/secrets/berth";

// "registry:5000/team/churn-model:1.2" -> "churn-model": lower case, [a-z0-9-], a letter first, at most 44
// characters (room for "-batch").
std::string DefaultName(const std::string& image);
// DNS-1035 (a Service's name): a letter first, at most 50 characters.
Status CheckName(const std::string& name, const char* flag);

YamlDoc Labels(const std::string& name, const char* component);
YamlDoc Metadata(const std::string& namespace_name, const std::string& name, const char* component);
YamlDoc Selector(const std::string& name);
// Restricted Pod Security: the pod's part, and the container's.
YamlDoc PodSecurity();
YamlDoc ContainerSecurity();
// requests = limits: Guaranteed QoS.
YamlDoc Resources(const std::string& cpu, const std::string& memory);
// berth sizes its threads from the CPU limit (common/cpu_quota.h) as well as from the cgroup quota.
YamlDoc CpuLimitEnv();
// The container's env: the CPU limit, then each NAME=VALUE of `extra` (--env: a pipeline's remote URLs, say).
Result<YamlDoc> ContainerEnv(const std::vector<std::string>& extra);
// `port`: a port's name or number.
YamlDoc HttpProbe(const char* path, const YamlDoc& port, int64_t period, int64_t failures, int64_t timeout);
// grpc.health.v1 Check of `service` on `port` (Kubernetes 1.27+).
YamlDoc GrpcProbe(int64_t port, const char* service, int64_t period, int64_t failures, int64_t timeout);
YamlDoc Port(const char* name, int64_t port);
// prometheus.io/scrape, port and path, added to `annotations`.
void AddPrometheusAnnotations(YamlDoc& annotations, int64_t port);

}  // namespace berth
