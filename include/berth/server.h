// Entry points the CLI calls: `berth serve` and `berth predict`.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "berth/status.h"
#include "berth/version.h"

namespace berth {

struct ServerOptions {
  std::string model_repository;
  // When model_repository is itself one model's directory (it holds model.yaml: KServe's storage initializer
  // leaves a single model in /mnt/models), the name it serves under; "" = the directory's name.
  std::string model_name;
  std::string host = "0.0.0.0";
  uint16_t http_port = 8000;
  uint16_t grpc_port = 8001;              // KServe v2 gRPC + grpc.health.v1; 0 = off
  uint16_t metrics_port = 8002;           // Prometheus /metrics; 0 = off
  bool ui = true;                         // the web UI on the HTTP port (GET /, /ui/...)
  int http_threads = 0;                   // 0 = from the CPU quota (cgroup) and affinity
  int64_t request_timeout_ms = 0;         // queue timeout for requests without parameters.timeout_us; 0 = none
  int64_t inline_max_us = 100;            // run a request on its I/O thread when the model is this fast; 0 = never
  int64_t execution_timeout_ms = 120000;  // for models whose model.yaml sets none; 0 = no limit
  uint64_t max_request_bytes = 64ull << 20;
  uint64_t max_inflight_body_bytes = 1ull << 30;  // request bodies held at once; beyond: 503
  int64_t max_connections = 0;                    // 0 = what the descriptor limit allows
  uint32_t max_header_bytes = 16 << 10;
  int read_timeout_secs = 30;               // to receive one whole request once it started
  int idle_timeout_secs = 60;               // between requests on a keep-alive connection
  int shutdown_grace_secs = 10;             // drain bound after SIGTERM/SIGINT
  std::string backend_dir;                  // "" = next to the binary: ../lib/berth/backends
  std::string model_control_mode = "none";  // none | poll | explicit (Triton's flag)
  int repository_poll_secs = 15;            // poll mode: how often the repository is rescanned
  std::vector<std::string> load_models;     // explicit mode: models loaded at start
  std::string admin_token_file;             // enables load/unload with this bearer token
  std::string auth_token_file;              // requires this bearer token for all but health
  // TLS on every listener (HTTP, gRPC, metrics) when the certificate and key
  // are given; with a client CA, clients must present a certificate it
  // signed (mTLS). Re-read on SIGHUP.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

// Serves until SIGTERM or SIGINT, then drains. Returns an error if the
// server could not start (bad repository path, port in use), and
// DeadlineExceeded when the shutdown grace period ran out with requests
// still unanswered (the message says how many).
Status RunServer(const ServerOptions& options);

struct PredictOptions {
  std::string model_dir;
  std::vector<std::pair<std::string, std::string>> inputs;  // name, JSON array text
  int64_t version = -1;                                     // -1 = highest
  std::string backend_dir;
};

// Loads one model, runs it once, and returns the v2 JSON response.
Result<std::string> RunPredict(const PredictOptions& options);

struct InspectOptions {
  std::string model_dir;
  int64_t version = -1;
  std::string backend_dir;
};

// The model's signature as model.yaml text: from model.yaml, or inferred
// from the model file (ONNX graph, XGBoost feature count) where it is absent.
Result<std::string> RunInspect(const InspectOptions& options);

}  // namespace berth
