#include "loadgen/load_generator.h"

#include <simdjson.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "common/file_util.h"
#include "common/json_writer.h"
#include "loadgen/grpc_load.h"
#include "net/http_client.h"
#include "net/url.h"
#include "protocol/v2/v2_client_codec.h"
#include "protocol/v2/v2_codec.h"

namespace berth {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// A synthesized body larger than this is almost certainly a shape typo.
constexpr int64_t kMaxSynthesizedBytes = int64_t{256} << 20;
constexpr uint64_t kMaxResponseBytes = uint64_t{1} << 32;
// After a refused or reset connection, wait before reconnecting so that a dead
// server does not turn the loop into a busy spin of errors.
constexpr auto kReconnectBackoff = std::chrono::milliseconds(10);

}  // namespace

// Request bodies.

namespace {

using InputSpec = V2TensorMetadata;

struct ModelMetadata {
  std::vector<InputSpec> inputs;
  // berth (like Triton) writes a batched model's shapes with a leading -1 and
  // offers no max_batch_size in the metadata, so that leading -1 is how the
  // batch dimension is recognised.
  bool batched = false;
};

Result<ModelMetadata> ParseMetadata(std::string_view body) {
  ASSIGN_OR_RETURN(V2ModelMetadata m, DecodeModelMetadata(body));
  ModelMetadata meta;
  meta.inputs = std::move(m.inputs);
  meta.batched = !meta.inputs.empty() && !meta.inputs[0].shape.empty() && meta.inputs[0].shape[0] == -1;
  return meta;
}

// The shape to send for `spec`: batch dimension from --batch-size, other -1
// dims from --shape or 1.
Result<std::vector<int64_t>> ConcreteShape(const InputSpec& spec, bool batched, const LoadGeneratorOptions& opts) {
  std::vector<int64_t> shape = spec.shape;
  size_t first = batched && !shape.empty() ? 1 : 0;
  if (first == 1) shape[0] = opts.batch_size;
  auto it = opts.shapes.find(spec.name);
  if (it != opts.shapes.end() && it->second.size() != shape.size() - first) {
    return InvalidArgument("--shape " + spec.name + ": the input has " + std::to_string(shape.size() - first) +
                           " dims" + (first ? " after the batch dimension" : "") + " (shape " +
                           ShapeToString(spec.shape) + "), got " + std::to_string(it->second.size()));
  }
  for (size_t i = first; i < shape.size(); ++i) {
    int64_t given = it == opts.shapes.end() ? -1 : it->second[i - first];
    if (shape[i] == -1) {
      shape[i] = given == -1 ? 1 : given;
    } else if (given != -1 && given != shape[i]) {
      return InvalidArgument("--shape " + spec.name + ": dim " + std::to_string(i) + " is fixed at " +
                             std::to_string(shape[i]) + " by the model, got " + std::to_string(given));
    }
  }
  return shape;
}

// Random values that every datatype can hold: small integers, floats in [0, 1).
void WriteRandomData(DataType dtype, int64_t count, std::mt19937_64& rng, JsonWriter& w) {
  std::uniform_int_distribution<int> small(0, 99);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  w.BeginArray();
  for (int64_t i = 0; i < count; ++i) {
    switch (dtype) {
      case DataType::kBool: w.Bool(small(rng) & 1); break;
      case DataType::kFp16:
      case DataType::kFp32:
      case DataType::kFp64: w.Float(unit(rng)); break;
      case DataType::kBytes: {
        std::string s(8, 'a');
        for (char& c : s) c = static_cast<char>('a' + small(rng) % 26);
        w.String(s);
        break;
      }
      default: w.Int(small(rng));
    }
  }
  w.EndArray();
}

// A v2 JSON request with random data for every input. Binary requests are
// made from this one (decoded, then re-encoded), so both carry the same values.
Result<std::string> SynthesizeRequest(const ModelMetadata& meta, const LoadGeneratorOptions& opts) {
  for (const auto& [name, dims] : opts.shapes) {
    auto same = [&](const InputSpec& s) { return s.name == name; };
    if (std::none_of(meta.inputs.begin(), meta.inputs.end(), same)) {
      return InvalidArgument("--shape " + name + ": the model has no input '" + name + "'");
    }
  }
  std::mt19937_64 rng(42);  // fixed: the same command sends the same bytes
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("inputs");
  w.BeginArray();
  for (const InputSpec& spec : meta.inputs) {
    ASSIGN_OR_RETURN(std::vector<int64_t> shape, ConcreteShape(spec, meta.batched, opts));
    // Refused before writing: a random value takes up to about 12 bytes of JSON.
    auto count = ElementCount(shape, kMaxSynthesizedBytes);
    if (!count.ok() || static_cast<int64_t>(out.size()) + *count * 12 > kMaxSynthesizedBytes) {
      return InvalidArgument("input '" + spec.name + "' with shape " + ShapeToString(shape) +
                             " makes the request body larger than 256 MiB");
    }
    w.BeginObject();
    WriteTensorHeader(w, spec.name, DataTypeName(spec.dtype), shape);
    w.Key("data");
    WriteRandomData(spec.dtype, *count, rng, w);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

// One element of `t` (index i) as a JSON value.
void WriteElement(const Tensor& t, int64_t i, const std::vector<std::string_view>& strings, JsonWriter& w) {
  auto at = [&](auto zero) {
    decltype(zero) v;
    std::memcpy(&v, t.data.data() + i * static_cast<int64_t>(sizeof v), sizeof v);
    return v;
  };
  switch (t.dtype) {
    case DataType::kBool: w.Bool(t.data[static_cast<size_t>(i)] != 0); break;
    case DataType::kFp32: w.Float(at(float{})); break;
    case DataType::kFp64: w.Float(at(double{})); break;
    case DataType::kInt8: w.Int(at(int8_t{})); break;
    case DataType::kInt16: w.Int(at(int16_t{})); break;
    case DataType::kInt32: w.Int(at(int32_t{})); break;
    case DataType::kInt64: w.Int(at(int64_t{})); break;
    case DataType::kUint8: w.Int(at(uint8_t{})); break;
    case DataType::kUint16: w.Int(at(uint16_t{})); break;
    case DataType::kUint32: w.Int(at(uint32_t{})); break;
    case DataType::kUint64: w.Int(at(uint64_t{})); break;
    case DataType::kBytes: w.String(strings[static_cast<size_t>(i)]); break;
    default: w.Null();  // FP16: TF Serving's JSON has no half floats
  }
}

// The elements of `t` from `*next` on, nested as `shape[dim..]` (TF Serving's
// JSON takes shapes from the nesting).
void WriteNested(const Tensor& t, size_t dim, int64_t* next, const std::vector<std::string_view>& strings,
                 JsonWriter& w) {
  if (dim == t.shape.size()) return WriteElement(t, (*next)++, strings, w);
  w.BeginArray();
  for (int64_t i = 0; i < t.shape[dim]; ++i) WriteNested(t, dim + 1, next, strings, w);
  w.EndArray();
}

// A TF Serving predict body in the columnar format: {"inputs": {name: nested values}}.
Result<std::string> TfServingBody(const InferRequest& request) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("inputs");
  w.BeginObject();
  for (const Tensor& t : request.inputs) {
    if (t.dtype == DataType::kFp16) return InvalidArgument("input '" + t.name + "': TF Serving's JSON has no FP16");
    std::vector<std::string_view> strings;
    if (t.dtype == DataType::kBytes) {
      ASSIGN_OR_RETURN(strings, SplitBytesElements(t.data.data(), t.data.size()));
    }
    w.Key(t.name);
    int64_t next = 0;
    WriteNested(t, 0, &next, strings, w);
  }
  w.EndObject();
  w.EndObject();
  return out;
}

}  // namespace

namespace {

// The v2 JSON body (the --input-data file byte for byte, or random data from
// the metadata) and its tensors: decoding finds a broken file before any load
// is sent, and gives what binary, gRPC and TF Serving bodies carry.
struct V2Body {
  std::string json;
  InferRequest request;
};

Result<V2Body> BodyFor(const ModelMetadata& meta, const LoadGeneratorOptions& options) {
  V2Body out;
  std::string source = "the synthesized request";
  if (!options.input_data_path.empty()) {
    if (!options.shapes.empty()) return InvalidArgument("--shape does not apply to --input-data");
    source = "--input-data " + options.input_data_path;
    Result<std::string> text = ReadRegularFile(options.input_data_path, kMaxSynthesizedBytes);
    if (!text.ok() || text->empty()) {
      return InvalidArgument(source + ": cannot read the file, or it is empty" +
                             (text.ok() ? std::string() : " (" + text.status().message() + ")"));
    }
    out.json = std::move(text).value();
  } else {
    ASSIGN_OR_RETURN(out.json, SynthesizeRequest(meta, options));
  }
  auto decoded = DecodeInferRequest(out.json, std::nullopt);
  if (!decoded.ok()) return decoded.status().WithContext(source);
  out.request = std::move(decoded).value();
  return out;
}

// Rows per request: the batch dimension of a batched model's first input.
int64_t RowsOf(const ModelMetadata& meta, const InferRequest& request) {
  if (!meta.batched || request.inputs.empty() || request.inputs[0].shape.empty()) return 1;
  return request.inputs[0].shape[0];
}

}  // namespace

Result<BenchProtocol> ParseBenchProtocol(std::string_view name) {
  if (name == "http") return BenchProtocol::kHttp;
  if (name == "grpc") return BenchProtocol::kGrpc;
  if (name == "tfserving") return BenchProtocol::kTfServing;
  return InvalidArgument("--protocol: expected http, grpc or tfserving; got '" + std::string(name) + "'");
}

struct LoadGenerator::Target {
  Url origin;
  tcp::resolver::results_type endpoints;  // resolved once: a reconnect does not resolve again
  std::string request;                    // the whole serialized HTTP request, sent as-is by every connection
  std::unique_ptr<GrpcLoad> grpc;         // --protocol grpc: the channel and the request instead
};

// The closed loop.

namespace {

// What every connection of one level shares, read-only while the level runs.
struct LoopContext {
  const Url* origin;
  const tcp::resolver::results_type* endpoints;
  const std::string* request;  // the whole serialized HTTP request
  Clock::time_point start;     // the measurement window
  Clock::time_point end;
  std::chrono::milliseconds timeout;
  bool check_outputs;
  bool tfserving;              // answers are TF Serving's: "outputs" may be any JSON value
  const std::string* ca_file;  // https: trusted CAs
  bool InWindow(Clock::time_point t) const { return t >= start && t <= end; }
};

// What one I/O thread saw; merged after the threads stop so that no counter is shared.
struct WorkerStats {
  std::vector<int64_t> latencies_ns;
  LevelResult counts;
};

// One keep-alive connection in the closed loop. Runs only on its worker's
// io_context thread; destroyed after that thread stops.
class Connection {
 public:
  Connection(asio::io_context& ioc, const LoopContext& ctx, WorkerStats* stats)
      : http_(std::make_shared<HttpConnection>(ioc, *ctx.origin, ClientOptions(ctx))),
        backoff_(ioc),
        ctx_(ctx),
        stats_(stats) {}

  void Connect() {
    http_->AsyncConnect(*ctx_.endpoints, [this](Status s) {
      if (!s.ok()) return Fail(s);
      Send();
    });
  }

 private:
  static HttpClientOptions ClientOptions(const LoopContext& ctx) {
    HttpClientOptions o;
    o.connect_timeout = ctx.timeout;
    o.request_timeout = ctx.timeout;
    o.ca_file = *ctx.ca_file;
    return o;
  }

  void Send() {
    sent_at_ = Clock::now();
    if (sent_at_ >= ctx_.end) return;  // its answer could not be counted
    http_->AsyncExchange(*ctx_.request, kMaxResponseBytes, false, [this](Status s) { OnAnswer(s); });
  }

  void OnAnswer(const Status& s) {
    if (!s.ok()) return Fail(s);
    Clock::time_point now = Clock::now();
    const auto& res = http_->response();
    if (ctx_.InWindow(now)) Record(res, now);
    if (http_->reusable()) return Send();
    Connect();
  }

  void Record(const HttpConnection::Response& res, Clock::time_point now) {
    LevelResult& c = stats_->counts;
    ++c.requests;
    unsigned status = res.result_int();
    if (status != 200) {
      ++c.status_counts[static_cast<int>(status)];
      ++(status >= 200 && status < 300 ? c.invalid_responses : c.non_2xx);
      return;
    }
    if (ctx_.check_outputs && !HasOutputs(res)) {
      ++c.invalid_responses;
      return;
    }
    ++c.successes;
    stats_->latencies_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent_at_).count());
  }

  // The JSON part of the answer (all of it, or the Inference-Header-Content-Length prefix) has "outputs".
  bool HasOutputs(const HttpConnection::Response& res) {
    std::string_view body = res.body();
    if (auto it = res.find("Inference-Header-Content-Length"); it != res.end()) {
      size_t n = 0;
      std::string_view v = it->value();
      auto [p, e] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (e != std::errc() || p != v.data() + v.size() || n > body.size()) return false;
      body = body.substr(0, n);
    }
    simdjson::dom::element doc;
    if (parser_json_.parse(body.data(), body.size()).get(doc)) return false;
    simdjson::dom::element outputs;
    if (doc["outputs"].get(outputs)) return false;
    return ctx_.tfserving || outputs.is_array();
  }

  void Fail(const Status& s) {
    bool timeout = s.code() == StatusCode::kDeadlineExceeded;
    if (ctx_.InWindow(Clock::now())) {
      ++stats_->counts.requests;
      ++(timeout ? stats_->counts.timeouts : stats_->counts.connection_errors);
    }
    http_->Close();
    // A timed-out request may still be answered later; only a fresh connection
    // keeps that answer from being read as the next one's.
    if (timeout) return Connect();
    backoff_.expires_after(kReconnectBackoff);
    backoff_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec) Connect();
    });
  }

  std::shared_ptr<HttpConnection> http_;
  asio::steady_timer backoff_;
  simdjson::dom::parser parser_json_;
  const LoopContext& ctx_;
  WorkerStats* stats_;
  Clock::time_point sent_at_;
};

struct Worker {
  asio::io_context ioc{1};  // declared first: destroyed after the connections that use it
  std::vector<std::unique_ptr<Connection>> connections;
  WorkerStats stats;
};

}  // namespace

Result<std::unique_ptr<LoadGenerator>> LoadGenerator::Create(const LoadGeneratorOptions& options) {
  if (options.model.empty()) return InvalidArgument("--model is required");
  if (!(options.duration_s > 0) || options.duration_s > 86400) {
    return InvalidArgument("--duration must be above 0 and at most 86400 seconds");
  }
  if (!(options.warmup_s >= 0) || options.warmup_s > 3600) return InvalidArgument("--warmup must be 0..3600 seconds");
  if (options.timeout_ms < 1) return InvalidArgument("--timeout-ms must be at least 1");
  if (options.batch_size < 1) return InvalidArgument("--batch-size must be at least 1");
  if (options.version < 0) return InvalidArgument("--model-version must be a positive integer");
  ASSIGN_OR_RETURN(ServerUrl url, ParseServerUrl(options.url));
  if (!options.ca_file.empty()) {
    if (!url.tls) return InvalidArgument("--cacert applies to https:// URLs only");
    Result<std::string> pem = ReadRegularFile(options.ca_file, 1 << 20);
    if (!pem.ok()) return InvalidArgument("--cacert " + options.ca_file + ": " + pem.status().message());
  }
  if (options.binary && options.protocol != BenchProtocol::kHttp) {
    return InvalidArgument("--binary applies to --protocol http (gRPC always sends raw tensors)");
  }
  if (options.protocol == BenchProtocol::kGrpc) return CreateGrpc(options, url);

  auto target = std::make_unique<Target>();
  target->origin.host = url.host;
  target->origin.port = url.port;
  target->origin.tls = url.tls;
  {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    target->endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return Unavailable("cannot resolve '" + url.host + "' in " + options.url + ": " + ec.message());
  }
  std::string host_header = target->origin.HostHeader();
  std::string model_path = url.prefix + "/v2/models/" + PercentEncode(options.model);
  if (options.version > 0) model_path += "/versions/" + std::to_string(options.version);

  HttpClientOptions client_options;
  client_options.connect_timeout = client_options.request_timeout = std::chrono::milliseconds(options.timeout_ms);
  client_options.user_agent = "berth-bench";
  client_options.ca_file = options.ca_file;
  HttpClientRequest get;
  get.url = target->origin;
  get.url.target = model_path;
  auto answer = HttpClient(client_options).Send(get);
  if (!answer.ok()) return Unavailable("server " + options.url + " is unreachable: " + answer.status().message());
  if (answer->status != 200) {
    std::string what = "model '" + options.model + "'" +
                       (options.version > 0 ? " version " + std::to_string(options.version) : std::string()) +
                       ": GET " + model_path + " answered " + std::to_string(answer->status) + " " + answer->reason;
    if (!answer->body.empty()) what += ": " + answer->body.substr(0, 500);
    return NotFound(what);
  }
  auto meta = ParseMetadata(answer->body);
  if (!meta.ok()) return meta.status().WithContext("GET " + model_path);
  if (options.batch_size > 1 && !meta->batched) {
    return InvalidArgument("--batch-size " + std::to_string(options.batch_size) + ": model '" + options.model +
                           "' takes no batch dimension");
  }

  ASSIGN_OR_RETURN(V2Body v2, BodyFor(*meta, options));
  std::string body = std::move(v2.json);
  const InferRequest* decoded = &v2.request;
  int64_t rows = RowsOf(*meta, v2.request);
  std::optional<size_t> json_length;
  std::string infer_path = model_path + "/infer";
  if (options.protocol == BenchProtocol::kTfServing) {
    infer_path = url.prefix + "/v1/models/" + PercentEncode(options.model) +
                 (options.version > 0 ? "/versions/" + std::to_string(options.version) : std::string()) + ":predict";
    ASSIGN_OR_RETURN(body, TfServingBody(*decoded));  // --input-data too: a v2 request, re-encoded
  }
  if (options.binary) {
    EncodedRequest encoded = EncodeInferRequest(*decoded, /*binary=*/true);
    body = std::move(encoded.body);
    json_length = encoded.json_length;
  }

  http::request<http::string_body> req{http::verb::post, infer_path, 11};
  req.set(http::field::host, host_header);
  req.set(http::field::user_agent, "berth-bench");
  req.set(http::field::content_type, json_length ? "application/octet-stream" : "application/json");
  if (json_length) req.set("Inference-Header-Content-Length", std::to_string(*json_length));
  req.keep_alive(true);
  req.body() = std::move(body);
  req.prepare_payload();
  std::ostringstream wire;
  wire << req;
  target->request = wire.str();

  std::unique_ptr<LoadGenerator> gen(new LoadGenerator(options, std::move(target)));
  gen->description_ = RunDescription{options.url,
                                     options.model,
                                     rows,
                                     options.binary,
                                     req.body().size(),
                                     options.warmup_s,
                                     options.duration_s,
                                     options.protocol == BenchProtocol::kTfServing ? "tfserving" : "http"};
  return gen;
}

Result<std::unique_ptr<LoadGenerator>> LoadGenerator::CreateGrpc(const LoadGeneratorOptions& options,
                                                                 const ServerUrl& url) {
  if (!url.prefix.empty()) return InvalidArgument("--protocol grpc: the URL takes no path (" + options.url + ")");
  GrpcLoadOptions go;
  go.host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  go.port = url.port;
  go.tls = url.tls;
  go.ca_file = options.ca_file;
  go.model = options.model;
  go.version = options.version;
  go.timeout = std::chrono::milliseconds(options.timeout_ms);
  ASSIGN_OR_RETURN(std::unique_ptr<GrpcLoad> grpc, GrpcLoad::Create(go));
  ModelMetadata meta;
  meta.inputs = grpc->metadata().inputs;
  meta.batched = !meta.inputs.empty() && !meta.inputs[0].shape.empty() && meta.inputs[0].shape[0] == -1;
  if (options.batch_size > 1 && !meta.batched) {
    return InvalidArgument("--batch-size " + std::to_string(options.batch_size) + ": model '" + options.model +
                           "' takes no batch dimension");
  }
  ASSIGN_OR_RETURN(V2Body v2, BodyFor(meta, options));
  int64_t rows = RowsOf(meta, v2.request);
  size_t bytes = grpc->SetRequest(v2.request);
  auto target = std::make_unique<Target>();
  target->grpc = std::move(grpc);
  std::unique_ptr<LoadGenerator> gen(new LoadGenerator(options, std::move(target)));
  gen->description_ =
      RunDescription{options.url, options.model, rows, false, bytes, options.warmup_s, options.duration_s, "grpc"};
  return gen;
}

LoadGenerator::LoadGenerator(const LoadGeneratorOptions& options, std::unique_ptr<Target> target)
    : options_(options), target_(std::move(target)) {}

LoadGenerator::~LoadGenerator() = default;

LevelResult LoadGenerator::Run(int connections) {
  connections = std::max(connections, 1);
  int threads = options_.threads > 0 ? options_.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, connections);

  auto seconds = [](double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };
  LoopContext ctx{&target_->origin,
                  &target_->endpoints,
                  &target_->request,
                  {},
                  {},
                  std::chrono::milliseconds(options_.timeout_ms),
                  options_.check_outputs,
                  options_.protocol == BenchProtocol::kTfServing,
                  &options_.ca_file};
  ctx.start = Clock::now() + seconds(options_.warmup_s);
  ctx.end = ctx.start + seconds(options_.duration_s);

  std::vector<int64_t> latencies;
  LevelResult out;
  if (target_->grpc) {
    target_->grpc->Run(connections, ctx.start, ctx.end, &out, &latencies);
    return Summarize(std::move(out), std::move(latencies), connections);
  }

  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < threads; ++i) workers.push_back(std::make_unique<Worker>());
  for (int i = 0; i < connections; ++i) {
    Worker& w = *workers[static_cast<size_t>(i % threads)];
    w.connections.push_back(std::make_unique<Connection>(w.ioc, ctx, &w.stats));
    w.connections.back()->Connect();
  }
  // Each thread stops at the window's end even with requests in flight: the
  // run is bounded by warmup + duration whatever the server does.
  std::vector<std::thread> pool;
  for (auto& w : workers) pool.emplace_back([&w, &ctx] { w->ioc.run_until(ctx.end); });
  for (auto& t : pool) t.join();

  for (auto& w : workers) {
    const LevelResult& c = w->stats.counts;
    out.requests += c.requests;
    out.successes += c.successes;
    out.connection_errors += c.connection_errors;
    out.timeouts += c.timeouts;
    out.non_2xx += c.non_2xx;
    out.invalid_responses += c.invalid_responses;
    for (const auto& [status, n] : c.status_counts) out.status_counts[status] += n;
    latencies.insert(latencies.end(), w->stats.latencies_ns.begin(), w->stats.latencies_ns.end());
  }
  workers.clear();  // closes the connections before their io_contexts go
  return Summarize(std::move(out), std::move(latencies), connections);
}

LevelResult LoadGenerator::Summarize(LevelResult out, std::vector<int64_t> latencies, int connections) const {
  out.connections = connections;
  out.duration_s = options_.duration_s;
  std::sort(latencies.begin(), latencies.end());
  auto us = [&](double p) { return (PercentileOfSorted(latencies, p) + 500) / 1000; };
  out.p50_us = us(50);
  out.p90_us = us(90);
  out.p99_us = us(99);
  out.p999_us = us(99.9);
  out.max_us = us(100);
  double sum = 0;
  for (int64_t v : latencies) sum += static_cast<double>(v);
  out.mean_us = latencies.empty() ? 0 : sum / static_cast<double>(latencies.size()) / 1000.0;
  out.rows = out.successes * description_.batch_size;
  out.throughput_rps = static_cast<double>(out.successes) / out.duration_s;
  out.throughput_rows_per_s = static_cast<double>(out.rows) / out.duration_s;
  return out;
}

}  // namespace berth
