// berth: the thin command line. Every subcommand is one call into the library.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "batch_command.h"
#include "bench_command.h"
#include "berth/server.h"
#include "build_command.h"
#include "common/logging.h"
#include "deploy_command.h"
#include "probe_command.h"

int main(int argc, char** argv) {
  // Each executor sizes its own intra-op threads (model.yaml `threads`); an
  // OpenBLAS pool of its own on top would oversubscribe the CPU quota. Set
  // before any backend plugin (and so OpenBLAS) is loaded; a user's setting wins.
  setenv("OPENBLAS_NUM_THREADS", "1", 0);

  CLI::App app{"berth: fast, small inference services for trained models"};
  app.set_version_flag("--version", std::string("berth ") + berth::Version());
  app.require_subcommand(0, 1);

  berth::ServerOptions serve_opts;
  std::string log_level = "info";
  auto* serve =
      app.add_subcommand("serve", "Serve a model repository over the Open Inference Protocol v2 (HTTP and gRPC)");
  serve->add_option("--model-repository", serve_opts.model_repository, "Model repository directory")->required();
  serve->add_option("--model-name", serve_opts.model_name,
                    "When --model-repository is one model's directory (holds model.yaml, as KServe's /mnt/models "
                    "may): its name (default: the directory's); ignored for a repository");
  serve->add_option("--host", serve_opts.host, "Address to listen on (0.0.0.0 = every interface, for containers)")
      ->capture_default_str();
  serve->add_option("--http-port", serve_opts.http_port, "HTTP port")->capture_default_str();
  serve->add_option("--http-threads", serve_opts.http_threads, "HTTP I/O threads (0 = from the CPU quota)")
      ->capture_default_str()
      ->check(CLI::Range(0, 256));
  serve->add_option("--grpc-port", serve_opts.grpc_port, "KServe v2 gRPC port (with grpc.health.v1); 0 = off")
      ->capture_default_str();
  serve->add_option("--metrics-port", serve_opts.metrics_port, "Prometheus metrics port (/metrics); 0 = off")
      ->capture_default_str();
  serve
      ->add_option_function<std::string>(
          "--ui", [&serve_opts](const std::string& v) { serve_opts.ui = v == "on"; },
          "The web UI on the HTTP port (GET /): on or off (default on)")
      ->check(CLI::IsMember({"on", "off"}));
  serve
      ->add_option("--request-timeout-ms", serve_opts.request_timeout_ms,
                   "Longest a request may wait in a model's queue unless it sets parameters.timeout_us; 0 = none")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}));
  serve
      ->add_option("--inline-max-us", serve_opts.inline_max_us,
                   "Run a request on its HTTP thread, skipping the queue, when an instance is idle and the model "
                   "has no dynamic batching and takes at most this long (measured); 0 = never")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  serve
      ->add_option("--execution-timeout-ms", serve_opts.execution_timeout_ms,
                   "An execution longer than this fails its requests with 504 and reports the instance stuck, for "
                   "models whose model.yaml sets no execution_timeout_ms; 0 = no limit")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{24} * 3600 * 1000));
  serve->add_option("--max-request-bytes", serve_opts.max_request_bytes, "Largest request body accepted (413 above)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  serve
      ->add_option("--max-inflight-body-bytes", serve_opts.max_inflight_body_bytes,
                   "Request bodies held at once over all connections; a request beyond it gets 503 before its body "
                   "is read")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1} << 10, uint64_t{1} << 44));
  serve
      ->add_option("--max-connections", serve_opts.max_connections,
                   "Open connections (0 = what the file descriptor limit allows); 32 more are kept for health checks")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  serve->add_option("--max-header-bytes", serve_opts.max_header_bytes, "Largest request header block (431 above)")
      ->capture_default_str()
      ->check(CLI::Range(uint32_t{256}, uint32_t{1} << 24));
  serve
      ->add_option("--read-timeout-secs", serve_opts.read_timeout_secs,
                   "Time allowed to send one request (gRPC: to open the connection)")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  serve
      ->add_option("--idle-timeout-secs", serve_opts.idle_timeout_secs,
                   "Idle keep-alive connections (gRPC: with no call open) close after this")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  serve
      ->add_option("--shutdown-grace-secs", serve_opts.shutdown_grace_secs,
                   "On SIGTERM/SIGINT, wait at most this long for in-flight requests")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600));
  serve->add_option("--backend-dir", serve_opts.backend_dir,
                    "Directory of backend plugins (default: ../lib/berth/backends next to the binary)");
  serve
      ->add_option("--model-control-mode", serve_opts.model_control_mode,
                   "none: load all at start; poll: also pick up changes; explicit: load/unload API")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "poll", "explicit"}));
  serve->add_option("--repository-poll-secs", serve_opts.repository_poll_secs, "Poll mode: seconds between rescans")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  serve->add_option("--load-model", serve_opts.load_models, "Explicit mode: a model to load at start (repeatable)");
  serve->add_option("--admin-token-file", serve_opts.admin_token_file,
                    "File holding the bearer token that load/unload require (without it they answer 403)");
  serve->add_option("--auth-token-file", serve_opts.auth_token_file,
                    "File holding a bearer token that every v2 endpoint but health requires (not /metrics)");
  serve->add_option("--tls-cert-file", serve_opts.tls_cert_file,
                    "PEM certificate (and chain): TLS 1.2+ on every listener (HTTP, gRPC, metrics); re-read on SIGHUP");
  serve->add_option("--tls-key-file", serve_opts.tls_key_file, "PEM private key of --tls-cert-file");
  serve->add_option("--tls-client-ca-file", serve_opts.tls_client_ca_file,
                    "PEM CA certificates: clients must present a certificate one of them signed (mTLS)");
  serve->add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")->capture_default_str();

  berth::PredictOptions predict_opts;
  std::vector<std::string> inputs;
  auto* predict = app.add_subcommand("predict", "Load one model, run it once, print the v2 JSON response");
  predict->add_option("model_dir", predict_opts.model_dir, "Model directory (holding model.yaml)")->required();
  predict->add_option("--input,-i", inputs, "NAME=JSON or NAME=@FILE; JSON is a (nested) array")->required();
  predict->add_option("--version", predict_opts.version, "Model version (default: the highest)");
  predict->add_option("--backend-dir", predict_opts.backend_dir, "Directory of backend plugins");
  predict->add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->capture_default_str();

  berth::InspectOptions inspect_opts;
  auto* inspect = app.add_subcommand("inspect", "Print the signature berth serves a model directory with (model.yaml)");
  inspect->add_option("model_dir", inspect_opts.model_dir, "Model directory")->required();
  inspect->add_option("--version", inspect_opts.version, "Model version (default: the highest)");
  inspect->add_option("--backend-dir", inspect_opts.backend_dir, "Directory of backend plugins");

  berth::Subcommand bench = berth::AddBenchCommand(app);
  berth::Subcommand batch = berth::AddBatchCommand(app);
  berth::Subcommand build = berth::AddBuildCommand(app), dockerfile = berth::AddDockerfileCommand(app);
  berth::Subcommand deploy = berth::AddDeployCommand(app);
  berth::Subcommand probe = berth::AddProbeCommand(app);

  auto* help = app.add_subcommand("help", "Show this help");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*help || app.get_subcommands().empty()) {
    std::cout << app.get_formatter()->make_help(&app, "berth", CLI::AppFormatMode::Normal);
    return 0;
  }
  if ((predict->parsed() || inspect->parsed() || batch.app->parsed() || probe.app->parsed()) && log_level == "info")
    log_level = "warn";  // keep stdout/stderr for the answer
  if (auto s = berth::InitLogging(log_level); !s.ok()) {
    std::cerr << "berth: " << s.message() << "\n";
    return 2;
  }
  if (bench.app->parsed()) return bench.run();
  if (batch.app->parsed()) return batch.run();
  for (auto* c : {&build, &dockerfile, &deploy, &probe}) {
    if (c->app->parsed()) return c->run();
  }
  if (inspect->parsed()) {
    auto out = berth::RunInspect(inspect_opts);
    if (!out.ok()) {
      std::cerr << "berth inspect: " << out.status().message() << "\n";
      return 1;
    }
    std::cout << *out << "\n";
    return 0;
  }
  if (*serve) {
    berth::Status s = berth::RunServer(serve_opts);
    if (!s.ok()) {
      spdlog::critical("{}", s.message());
      return 1;
    }
    return 0;
  }
  for (const auto& in : inputs) {
    auto eq = in.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "berth predict: --input '" << in << "': expected NAME=JSON or NAME=@FILE\n";
      return 2;
    }
    predict_opts.inputs.emplace_back(in.substr(0, eq), in.substr(eq + 1));
  }
  auto out = berth::RunPredict(predict_opts);
  if (!out.ok()) {
    std::cerr << "berth predict: " << out.status().message() << "\n";
    return 1;
  }
  std::cout << *out << "\n";
  return 0;
}
