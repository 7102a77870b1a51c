// `berth deploy compose`: one compose service per image (for `docker compose`
// and `podman-compose`), each hardened as the Kubernetes pod is (read-only
// root, no capabilities, no new privileges, CPU and memory limits) with a
// healthcheck that needs no shell (`berth probe`). A pipeline's remote step
// whose URL is `${NAME:-...}` and whose model another service serves gets
// NAME=http://SERVICE:PORT in its environment and waits for that service to
// be healthy: the microservices example as three services.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/model_config.h"
#include "common/pipeline_spec.h"
#include "deploy/manifests.h"
#include "deploy/pod_parts.h"
#include "deploy/yaml_doc.h"

namespace berth {
namespace {

constexpr int64_t kHttpPort = 8000, kGrpcPort = 8001;  // berth serve's defaults, inside each container

struct Service {
  std::string name, image, repository;
  std::vector<ModelSource> models;
  RepositorySizing sizing;
  std::map<std::string, std::string> environment;  // from the wiring
  std::set<std::string> depends_on;
  std::string publish;  // [ADDRESS:]HOSTPORT, or ""
};

// "320Mi" (Kubernetes) -> "320m" (compose: binary units); what the user gave stays.
std::string ComposeMemory(const std::string& quantity) {
  if (quantity.size() > 2 && quantity.compare(quantity.size() - 2, 2, "Mi") == 0) {
    return quantity.substr(0, quantity.size() - 2) + "m";
  }
  return quantity;
}

// Kubernetes CPU ("2", "500m") -> compose's cpus ("2", "0.5").
std::string ComposeCpus(const std::string& quantity) {
  if (quantity.empty() || quantity.back() != 'm') return quantity;
  std::string milli = quantity.substr(0, quantity.size() - 1);
  while (milli.size() < 4) milli = "0" + milli;
  std::string out = milli.substr(0, milli.size() - 3) + "." + milli.substr(milli.size() - 3);
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  return out;
}

// Points each remote step at the service serving its model, where model.yaml lets it.
Status Wire(std::vector<Service>& services) {
  std::map<std::string, std::string> server_of;  // model -> service
  for (const Service& s : services) {
    for (const ModelSource& m : s.models) server_of.emplace(m.name, s.name);
  }
  for (Service& s : services) {
    for (const ModelSource& m : s.models) {
      if (!m.config.pipeline) continue;
      for (const PipelineStep& step : m.config.pipeline->steps) {
        if (!step.remote) continue;
        auto it = server_of.find(step.remote->model);
        if (it == server_of.end() || it->second == s.name) continue;  // served elsewhere, or by itself
        const std::string where = "service '" + s.name + "', model '" + m.name + "', step '" + step.name + "'";
        if (step.remote->url_variable.empty()) {
          return InvalidArgument(where + ": its remote.url is a literal, so it cannot be pointed at service '" +
                                 it->second + "'; write it as ${NAME:-http://...} (README: Pipelines)");
        }
        int64_t port = step.remote->protocol == RemoteProtocol::kGrpc ? kGrpcPort : kHttpPort;
        std::string url = "http://" + it->second + ":" + std::to_string(port);
        auto [e, added] = s.environment.emplace(step.remote->url_variable, url);
        if (!added && e->second != url) {
          return InvalidArgument(where + ": its remote.url variable already points at another service");
        }
        s.depends_on.insert(it->second);
      }
    }
  }
  return Status::Ok();
}

Status Publish(const DeployOptions& o, std::vector<Service>& services) {
  for (const std::string& p : o.publish) {
    size_t eq = p.find('=');
    auto s = std::find_if(services.begin(), services.end(),
                          [&](const Service& x) { return eq != std::string::npos && x.name == p.substr(0, eq); });
    if (s == services.end() || eq + 1 == p.size()) {
      return InvalidArgument("--publish: expected SERVICE=[ADDRESS:]PORT with SERVICE one of the services");
    }
    s->publish = p.substr(eq + 1);
  }
  if (!o.publish.empty()) return Status::Ok();
  // By default the services no other service calls (the gateways), on loopback from 8000.
  std::set<std::string> called;
  for (const Service& s : services) called.insert(s.depends_on.begin(), s.depends_on.end());
  int64_t port = 8000;
  for (Service& s : services) {
    if (called.count(s.name) == 0) {
      s.publish = "127.0.0.1:" + std::to_string(port);
      port += 100;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ComposeFile(const DeployOptions& o) {
  if (o.images.empty()) return InvalidArgument("--image: required (one per service)");
  if (o.images.size() != o.model_repositories.size()) {
    return InvalidArgument("--image, --model-repository: expected one --model-repository per --image, in order");
  }
  std::vector<Service> services;
  for (size_t i = 0; i < o.images.size(); ++i) {
    Service s;
    s.image = o.images[i];
    s.repository = o.model_repositories[i];
    s.name = DefaultName(s.image);
    RETURN_IF_ERROR(CheckName(s.name, "--image (the service's name comes from the image's)"));
    for (const Service& other : services) {
      if (other.name == s.name) return InvalidArgument("--image: two images named '" + s.name + "'");
    }
    ASSIGN_OR_RETURN(s.models, ReadModels(s.repository));
    ASSIGN_OR_RETURN(s.sizing, SizeRepository(s.repository));
    services.push_back(std::move(s));
  }
  RETURN_IF_ERROR(Wire(services));
  RETURN_IF_ERROR(Publish(o, services));

  YamlDoc file;
  YamlDoc& out = file["services"];
  for (const Service& s : services) {
    YamlDoc& c = out[s.name];
    c["image"] = s.image;
    c["command"] = YamlDoc::Strings({"--shutdown-grace-secs", std::to_string(o.shutdown_grace_secs)});
    if (!o.ui) {
      c["command"].Add("--ui");
      c["command"].Add("off");
    }
    if (!s.environment.empty()) {
      YamlDoc& env = c["environment"];
      for (const auto& [k, v] : s.environment) env[k] = v;
    }
    if (!s.depends_on.empty()) {
      YamlDoc& deps = c["depends_on"];
      for (const std::string& d : s.depends_on) deps[d]["condition"] = "service_healthy";
    }
    if (!s.publish.empty()) c["ports"] = YamlDoc::Strings({s.publish + ":" + std::to_string(kHttpPort)});
    c["read_only"] = true;
    c["cap_drop"] = YamlDoc::Strings({"ALL"});
    c["security_opt"] = YamlDoc::Strings({"no-new-privileges:true"});
    YamlDoc& limits = c["deploy"]["resources"]["limits"];
    limits["cpus"] = ComposeCpus(o.cpu.empty() ? s.sizing.Cpu() : o.cpu);
    limits["memory"] = ComposeMemory(o.memory.empty() ? s.sizing.Memory() : o.memory);
    // The image has no shell: the check is berth itself, in exec form.
    c["healthcheck"]["test"] = YamlDoc::Strings(
        {"CMD", kBinary, "probe", "http://127.0.0.1:" + std::to_string(kHttpPort) + "/v2/health/ready"});
    c["healthcheck"]["interval"] = "5s";
    c["healthcheck"]["timeout"] = "3s";
    c["healthcheck"]["retries"] = 3;
    c["healthcheck"]["start_period"] = std::to_string(s.sizing.StartupSeconds()) + "s";
    c["stop_grace_period"] = std::to_string(o.shutdown_grace_secs + 5) + "s";
    c["restart"] = "unless-stopped";
  }
  std::string header = "# berth deploy compose: " + std::to_string(services.size()) + " services";
  for (const Service& s : services) header += (&s == &services.front() ? ": " : ", ") + s.name;
  return header + "\n" + file.Emit();
}

}  // namespace berth
