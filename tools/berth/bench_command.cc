#include "bench_command.h"

#include <charconv>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <type_traits>

#include "loadgen/load_generator.h"

namespace berth {
namespace {

// What the flags bind to; owned by the run callback so it outlives AddBenchCommand.
struct BenchFlags {
  LoadGeneratorOptions options;
  int connections = 1;
  std::string concurrency_range;
  std::vector<std::string> shapes;
  std::string format = "table";
  std::string protocol = "http";
  std::vector<std::string> conversion_errors;  // numbers that did not parse, reported as usage errors
};

constexpr int kUsageError = 2;

// A numeric option parsed here rather than by CLI11, whose conversion errors
// would exit with its own codes instead of 2.
template <typename T>
CLI::Option* AddNumber(CLI::App* app, const std::string& names, T* target, const std::string& help,
                       std::shared_ptr<BenchFlags> flags) {
  std::string name = names.substr(names.rfind(',') + 1);  // "-c,--connections" -> "--connections"
  auto parse = [target, name, flags](const std::string& text) {
    bool ok = false;
    if constexpr (std::is_floating_point_v<T>) {
      char* end = nullptr;
      *target = std::strtod(text.c_str(), &end);
      ok = !text.empty() && end == text.c_str() + text.size();
    } else {
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *target);
      ok = !text.empty() && ec == std::errc() && p == text.data() + text.size();
    }
    if (!ok) flags->conversion_errors.push_back(name + ": expected a number, got '" + text + "'");
  };
  std::ostringstream default_value;
  default_value << *target;
  return app->add_option_function<std::string>(names, parse, help)
      ->default_str(default_value.str())
      ->type_name(std::is_floating_point_v<T> ? "FLOAT" : "INT");
}

// Usage errors are checked here rather than with CLI11 validators so that
// every one of them exits 2, as the command promises.
int RunBench(const BenchFlags& flags, const CLI::App& app) {
  auto usage = [](const std::string& message) {
    std::cerr << "berth bench: " << message << "\n";
    return kUsageError;
  };
  if (!flags.conversion_errors.empty()) return usage(flags.conversion_errors.front());
  if (!app.remaining().empty()) return usage("unexpected argument '" + app.remaining().front() + "'");
  if (flags.options.url.empty())
    return usage("a server URL is required, e.g. berth bench http://127.0.0.1:8000 -m MODEL");
  auto format = ParseReportFormat(flags.format);
  if (!format.ok()) return usage(format.status().message());

  std::vector<int> levels{flags.connections};
  if (!flags.concurrency_range.empty()) {
    if (app.count("--connections") > 0) return usage("give either --connections or --concurrency-range, not both");
    auto range = ParseConcurrencyRange(flags.concurrency_range);
    if (!range.ok()) return usage(range.status().message());
    levels = *range;
  } else if (flags.connections < 1 || flags.connections > 10000) {
    return usage("--connections must be 1..10000");
  }

  LoadGeneratorOptions options = flags.options;
  auto protocol = ParseBenchProtocol(flags.protocol);
  if (!protocol.ok()) return usage(protocol.status().message());
  options.protocol = *protocol;
  for (const std::string& s : flags.shapes) {
    auto shape = ParseShapeOption(s);
    if (!shape.ok()) return usage(shape.status().message());
    options.shapes[shape->first] = shape->second;
  }

  auto generator = LoadGenerator::Create(options);
  if (!generator.ok()) return usage(generator.status().message());

  std::vector<LevelResult> results;
  bool failed = false;
  for (int connections : levels) {
    results.push_back((*generator)->Run(connections));
    failed = failed || results.back().errors() > 0;
  }
  std::cout << FormatResults((*generator)->description(), results, *format) << std::flush;
  return failed ? 1 : 0;
}

}  // namespace

Subcommand AddBenchCommand(CLI::App& parent) {
  auto flags = std::make_shared<BenchFlags>();
  LoadGeneratorOptions& o = flags->options;
  Subcommand cmd;
  CLI::App* app = parent.add_subcommand(
      "bench",
      "Closed-loop load generator against an inference server (v2 over HTTP or gRPC, TF Serving REST): "
      "throughput and latency percentiles.\n"
      "Exit code: 0 if every request succeeded, 1 if any failed, 2 for bad usage or an unusable server/model");
  cmd.app = app;
  app->allow_extras();  // reported by RunBench, so that they exit 2 like every usage error
  app->add_option("url", o.url,
                  "Server base URL, e.g. http://127.0.0.1:8000 (https:// for TLS; for --protocol grpc the gRPC port, "
                  "e.g. http://127.0.0.1:8001)");
  app->add_option("--protocol", flags->protocol,
                  "http (v2 JSON, or binary with --binary), grpc (KServe v2 gRPC, raw tensors) or tfserving "
                  "(TF Serving REST predict, columnar JSON)")
      ->capture_default_str();
  app->add_option("--cacert", o.ca_file, "PEM file of the CAs to trust for https:// (default: the system's)");
  app->add_option("-m,--model", o.model, "Model to send infer requests to (required)");
  AddNumber(app, "--model-version", &o.version, "Model version (default: the server's choice)", flags);
  AddNumber(app, "-c,--connections", &flags->connections, "Concurrent keep-alive connections", flags);
  app->add_option("--concurrency-range", flags->concurrency_range,
                  "Sweep connections a..b by step (a:b:step); one result per level");
  AddNumber(app, "-d,--duration", &o.duration_s, "Measurement window per level, seconds", flags);
  AddNumber(app, "--warmup", &o.warmup_s, "Seconds of load before the window (not counted)", flags);
  AddNumber(app, "--timeout-ms", &o.timeout_ms, "Per-request timeout (write + answer)", flags);
  app->add_option("--input-data", o.input_data_path,
                  "File holding a complete v2 JSON request body (default: random data from the model's metadata)");
  app->add_option("--shape", flags->shapes,
                  "NAME:d1,d2,... for an input's -1 dims (dims after the batch dimension; default 1)");
  AddNumber(app, "-b,--batch-size", &o.batch_size, "Rows per request for batched models", flags);
  app->add_flag("--binary", o.binary, "Send inputs with the binary tensor extension and ask for binary outputs");
  app->add_flag("--check-outputs", o.check_outputs, "Count a 200 answer as an error unless its JSON has \"outputs\"");
  AddNumber(app, "--threads", &o.threads, "Client I/O threads (0 = min(connections, CPUs))", flags);
  app->add_option("-f,--format", flags->format, "table, json or csv")->capture_default_str();
  cmd.run = [flags, app] { return RunBench(*flags, *app); };
  return cmd;
}

}  // namespace berth
