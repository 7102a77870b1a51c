// `berth serve`: the repository, the v2 handler and the HTTP server, wired.
#include "berth/server.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "common/cpu_quota.h"
#include "metrics/prometheus.h"
#include "protocol/http/auth.h"
#include "protocol/http/http_server.h"
#include "protocol/http/v2_handler.h"
#include "repository/model_repository.h"

namespace berth {
namespace {

// The BLAS libraries mapped into this process (LibTorch pulls one in through
// Debian's alternatives: the reference BLAS is ~18x slower than OpenBLAS).
std::string BlasInUse() {
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> libs;
  std::string line;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    std::string file = std::filesystem::path(path).filename().string();
    if (file.find("blas") != std::string::npos || file.find("mkl_") != std::string::npos) libs.insert(path);
  }
  if (libs.empty()) return "none loaded";
  std::string out;
  for (const auto& l : libs) out += (out.empty() ? "" : ", ") + l;
  return out;
}

}  // namespace

const char* Version() { return "0.1.0"; }

std::string DefaultBackendDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "lib/berth/backends";
  return (exe.parent_path().parent_path() / "lib" / "berth" / "backends").string();
}

Status RunServer(const ServerOptions& o) {
  ModelRepository::Options ro;
  ro.root = o.model_repository;
  ro.backend_dir = o.backend_dir.empty() ? DefaultBackendDir() : o.backend_dir;
  ro.inline_max_us = o.inline_max_us;
  ASSIGN_OR_RETURN(std::unique_ptr<ModelRepository> repository, ModelRepository::Create(ro));

  if (o.model_control_mode != "none" && o.model_control_mode != "poll" && o.model_control_mode != "explicit") {
    return InvalidArgument("--model-control-mode: expected none, poll or explicit; got '" + o.model_control_mode + "'");
  }
  if (!o.load_models.empty() && o.model_control_mode != "explicit") {
    return InvalidArgument("--load-model needs --model-control-mode explicit");
  }
  V2Handler::Options hopts;
  hopts.default_timeout_us = o.request_timeout_ms * 1000;
  hopts.explicit_model_control = o.model_control_mode == "explicit";
  if (!o.admin_token_file.empty()) {
    ASSIGN_OR_RETURN(hopts.admin_token, ReadTokenFile(o.admin_token_file));
  }
  if (!o.auth_token_file.empty()) {
    ASSIGN_OR_RETURN(hopts.auth_token, ReadTokenFile(o.auth_token_file));
  }
  std::atomic<bool> draining{false};
  V2Handler handler(repository.get(), &draining, hopts);
  MetricsHandler metrics_handler(repository.get());
  CpuBudget cpu = DetectCpuBudget();
  HttpServer::Options ho;
  ho.host = o.host;
  ho.port = o.http_port;
  // Half the CPU budget for I/O: model executors run on threads of their own and need the rest.
  // (On 2 CPUs, 1 I/O thread served the MLP ~1.5x faster than 2: fewer threads than cores to share.)
  ho.threads = o.http_threads > 0 ? o.http_threads : ThreadsFor(cpu.cpus / 2);
  ho.max_body_bytes = o.max_request_bytes;
  ho.max_header_bytes = o.max_header_bytes;
  ho.read_timeout_secs = o.read_timeout_secs;
  ho.idle_timeout_secs = o.idle_timeout_secs;
  ho.shutdown_grace_secs = o.shutdown_grace_secs;
  ho.on_shutdown = [&draining] { draining = true; };
  spdlog::info("CPU budget: {}; HTTP I/O threads: {}{}", cpu.source, ho.threads,
               o.http_threads > 0 ? " (--http-threads)" : " (half the budget; executors use the rest)");
  ASSIGN_OR_RETURN(std::unique_ptr<HttpServer> server, HttpServer::Create(ho, &handler));
  handler.SetInFlightGauge(&server->in_flight(), ho.threads);
  spdlog::info("berth {} listening on http://{}:{}, repository {}, backends in {}", Version(), o.host, server->port(),
               o.model_repository, ro.backend_dir);
  if (o.metrics_port != 0) {
    ASSIGN_OR_RETURN(uint16_t metrics_port, server->AddListener(o.metrics_port, &metrics_handler));
    spdlog::info("metrics on http://{}:{}/metrics", o.host, metrics_port);
  }

  // Models load in the background: live answers at once, ready once loading finished.
  std::thread loader([&repository, &o] {
    if (o.model_control_mode == "explicit") {
      for (const auto& name : o.load_models) {
        Status s = repository->LoadModel(name);
        if (!s.ok()) spdlog::error("--load-model {}: {}", name, s.message());
      }
    } else {
      repository->LoadAll();
    }
    repository->MarkLoaded();
    size_t ready = 0, total = 0;
    for (const auto& e : repository->Index()) {
      ++total;
      if (e.state == ModelState::kReady) ++ready;
    }
    spdlog::info("{} of {} model versions ready; model control {}; BLAS: {}", ready, total, o.model_control_mode,
                 BlasInUse());
    repository->StartBackground(o.model_control_mode == "poll" ? o.repository_poll_secs : 0);
  });
  bool drained = server->Run();
  if (!drained || !repository->loaded()) {
    // The grace period is over: executors still busy (or a model still
    // loading) cannot be joined in bounded time, so leave without them.
    spdlog::warn("exiting with work unfinished after the {} s shutdown grace period", o.shutdown_grace_secs);
    spdlog::shutdown();
    std::_Exit(0);
  }
  loader.join();
  repository->StopAll();
  spdlog::info("stopped");
  return Status::Ok();
}

}  // namespace berth
