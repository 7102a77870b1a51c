// `berth serve`: the inference server, its front ends (HTTP, metrics, gRPC), TLS and the lifecycle, wired.
#include "berth/server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "app/lifecycle.h"
#include "backend/backend_registry.h"
#include "common/cpu_quota.h"
#include "net/tls_context.h"
#include "pipeline/pipeline_kind.h"
#include "protocol/grpc/grpc_server.h"
#include "protocol/http/http_server.h"
#include "protocol/http/metrics_handler.h"
#include "protocol/http/ui_handler.h"
#include "protocol/http/v2_handler.h"
#include "server/access_policy.h"
#include "server/inference_server.h"

namespace fs = std::filesystem;

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

// gRPC's TLS: the same files, watched by gRPC itself (read again every
// second, a new pair taken once the key matches the certificate), so a
// renewed certificate reaches new gRPC connections without SIGHUP too.
std::shared_ptr<grpc::ServerCredentials> GrpcTlsCredentials(const TlsFiles& files) {
  using grpc::experimental::FileWatcherCertificateProvider;
  constexpr unsigned kRefreshSecs = 1;
  auto provider = files.client_ca_file.empty()
                      ? std::make_shared<FileWatcherCertificateProvider>(files.key_file, files.cert_file, kRefreshSecs)
                      : std::make_shared<FileWatcherCertificateProvider>(files.key_file, files.cert_file,
                                                                         files.client_ca_file, kRefreshSecs);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (files.client_ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

Status RunServer(const ServerOptions& o) {
  if (o.model_control_mode != "none" && o.model_control_mode != "poll" && o.model_control_mode != "explicit") {
    return InvalidArgument("--model-control-mode: expected none, poll or explicit; got '" + o.model_control_mode + "'");
  }
  if (!o.load_models.empty() && o.model_control_mode != "explicit") {
    return InvalidArgument("--load-model needs --model-control-mode explicit");
  }
  AccessPolicy::Options access;
  access.explicit_model_control = o.model_control_mode == "explicit";
  if (!o.admin_token_file.empty()) {
    ASSIGN_OR_RETURN(access.admin_token, ReadTokenFile(o.admin_token_file));
  }
  if (!o.auth_token_file.empty()) {
    ASSIGN_OR_RETURN(access.auth_token, ReadTokenFile(o.auth_token_file));
  }
  TlsFiles tls_files{o.tls_cert_file, o.tls_key_file, o.tls_client_ca_file};
  std::unique_ptr<ReloadableTlsContext> tls;
  if (tls_files.enabled() || !tls_files.Check().ok()) {
    ASSIGN_OR_RETURN(tls, ReloadableTlsContext::Create(tls_files));  // checks every file before anything listens
  }
  // Before any thread starts: only the main thread takes SIGTERM/SIGINT/SIGHUP (WaitForShutdownSignal below).
  BlockShutdownSignals();

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
  ho.max_connections = o.max_connections;
  ho.max_inflight_body_bytes = o.max_inflight_body_bytes;
  ho.tls = tls.get();

  InferenceServer::Options so;
  so.repository.root = o.model_repository;
  std::error_code ec;
  if (fs::is_regular_file(fs::path(o.model_repository) / "model.yaml", ec)) {
    fs::path dir = fs::absolute(fs::path(o.model_repository), ec).lexically_normal();  // "." has a name too
    if (!dir.has_filename()) dir = dir.parent_path();
    so.repository.single_model = o.model_name.empty() ? dir.filename().string() : o.model_name;
    spdlog::info("{} holds model.yaml: serving it as the one model '{}'", o.model_repository,
                 so.repository.single_model);
  } else if (!o.model_name.empty()) {
    // KServe's runtime passes it whatever storageUri held: a repository keeps its models' own names.
    spdlog::warn("--model-name {}: ignored, {} is a repository (no model.yaml of its own)", o.model_name,
                 o.model_repository);
  }
  so.repository.backend_dir = o.backend_dir;
  so.repository.inline_max_us = o.inline_max_us;
  so.repository.execution_timeout_ms = o.execution_timeout_ms;
  so.default_timeout_us = o.request_timeout_ms * 1000;
  so.inline_slots = ho.threads;  // at most one request in flight per I/O thread runs inline
  ASSIGN_OR_RETURN(std::unique_ptr<InferenceServer> server, InferenceServer::Create(so));
  server->RegisterKind(kPipelineModelKind, PipelineKind(server.get()));

  V2Handler::Options vo;
  vo.max_body_bytes = o.max_request_bytes;
  vo.decode_threads = ThreadsFor(cpu.cpus / 2);
  V2Handler handler(server.get(), AccessPolicy(access), vo);
  MetricsHandler metrics_handler([&server] { return server->MetricsSnapshot(); });
  UiHandler ui_handler(&handler, &metrics_handler, o.ui);  // the page, and every other request to the API
  ho.draining = &server->draining_flag();
  spdlog::info("CPU budget: {}; HTTP I/O threads: {}{}", cpu.source, ho.threads,
               o.http_threads > 0 ? " (--http-threads)" : " (half the budget; executors use the rest)");
  ASSIGN_OR_RETURN(std::unique_ptr<HttpServer> http, HttpServer::Create(ho, &ui_handler));
  handler.SetFrontEnd(http.get());
  const char* scheme = tls ? "https" : "http";
  if (tls) {
    spdlog::info("TLS on every listener: certificate {}{}", o.tls_cert_file,
                 o.tls_client_ca_file.empty() ? "" : "; client certificates required (--tls-client-ca-file)");
  }
  spdlog::info("berth {} listening on {}://{}:{}, repository {}, backends in {}", Version(), scheme, o.host,
               http->port(), o.model_repository, o.backend_dir.empty() ? DefaultBackendDir() : o.backend_dir);
  if (o.ui) spdlog::info("web UI on {}://{}:{}/ (--ui off turns it off)", scheme, o.host, http->port());
  if (o.metrics_port != 0) {
    ASSIGN_OR_RETURN(uint16_t metrics_port, http->AddListener(o.metrics_port, &metrics_handler));
    spdlog::info("metrics on {}://{}:{}/metrics", scheme, o.host, metrics_port);
  }
  std::vector<FrontEnd*> front_ends = {http.get()};
  std::unique_ptr<GrpcServer> grpc;
  if (o.grpc_port != 0) {
    GrpcServer::Options go;
    go.host = o.host;
    go.port = o.grpc_port;
    go.max_message_bytes = static_cast<int64_t>(o.max_request_bytes);
    go.read_timeout_secs = o.read_timeout_secs;
    go.idle_timeout_secs = o.idle_timeout_secs;
    if (tls) go.credentials = GrpcTlsCredentials(tls_files);
    ASSIGN_OR_RETURN(grpc, GrpcServer::Create(go, server.get(), AccessPolicy(access)));
    spdlog::info("gRPC (KServe v2, grpc.health.v1) on {}:{}{}", o.host, grpc->port(), tls ? " (TLS)" : "");
    front_ends.push_back(grpc.get());
  }
  for (FrontEnd* f : front_ends) RETURN_IF_ERROR(f->Start());

  // Models load in the background: live answers at once, ready once loading finished.
  std::thread loader([&server, &o] {
    if (o.model_control_mode == "explicit") {
      for (const auto& name : o.load_models) {
        Status s = server->LoadModel(name);
        if (!s.ok()) spdlog::error("--load-model {}: {}", name, s.message());
      }
    } else {
      server->LoadAll();
    }
    server->MarkLoaded();
    size_t ready = 0, total = 0;
    for (const auto& e : server->Index()) {
      ++total;
      if (e.state == ModelState::kReady) ++ready;
    }
    spdlog::info("{} of {} model versions ready; model control {}; BLAS: {}", ready, total, o.model_control_mode,
                 BlasInUse());
    server->StartBackground(o.model_control_mode == "poll" ? o.repository_poll_secs : 0);
  });

  int signo = WaitForShutdownSignal([&tls] {
    if (!tls) return spdlog::info("SIGHUP: nothing to reload (no --tls-cert-file)");
    Status s = tls->Reload();
    if (s.ok()) {
      spdlog::info("SIGHUP: TLS certificate and key re-read; new connections use them, open ones keep theirs");
    } else {
      spdlog::error("SIGHUP: TLS files not reloaded, the previous certificate stays: {}", s.message());
    }
  });
  int64_t in_flight = 0;
  for (FrontEnd* f : front_ends) in_flight += f->InFlight();
  spdlog::info("received {}: draining {} in-flight requests (grace {} s)", signo == SIGTERM ? "SIGTERM" : "SIGINT",
               in_flight, o.shutdown_grace_secs);
  DrainResult drained = Drain(*server, front_ends, std::chrono::seconds(o.shutdown_grace_secs));
  spdlog::info("front ends stopped");
  if (drained.unanswered > 0 || !server->loaded()) {
    // The grace period is over: executors still busy (or a model still
    // loading) cannot be joined in bounded time, so leave without them.
    int code = 0;
    if (drained.unanswered > 0) {
      spdlog::error("shutdown grace period ({} s) over with {} requests unanswered: they are dropped",
                    o.shutdown_grace_secs, drained.unanswered);
      code = 1;
    } else {
      spdlog::warn("exiting while models are still loading");
    }
    spdlog::shutdown();
    std::_Exit(code);
  }
  loader.join();
  server->Stop();
  spdlog::info("stopped");
  return Status::Ok();
}

}  // namespace berth
