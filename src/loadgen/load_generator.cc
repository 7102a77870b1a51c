#include "loadgen/load_generator.h"

#include <simdjson.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "common/json_writer.h"
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

Result<int64_t> ParsePositive(std::string_view s, std::string_view what) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 1) {
    return InvalidArgument(std::string(what) + ": expected a positive integer, got '" + std::string(s) + "'");
  }
  return v;
}

// Path segments go into the request target verbatim only when they are unreserved (RFC 3986).
std::string PercentEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

Result<ServerUrl> ParseServerUrl(std::string_view url) {
  auto bad = [&](std::string why) {
    return InvalidArgument("URL '" + std::string(url) + "': " + why + " (expected http://host:port)");
  };
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return bad(url.find("://") == std::string_view::npos ? "no scheme" : "only http:// is supported");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos) return bad("no query or fragment allowed");
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (authority.find('@') != std::string_view::npos) return bad("no user information allowed");
  ServerUrl out;
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after[0] != ':') return bad("unexpected text after the IPv6 address");
    if (!after.empty()) port = after.substr(1);
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("no host");
  if (port.empty()) {
    out.port = "80";
  } else {
    auto p = ParsePositive(port, "port");
    if (!p.ok() || *p > 65535) return bad("port must be 1..65535");
    out.port = std::string(port);
  }
  out.prefix = std::string(path);
  return out;
}

Result<std::vector<int>> ParseConcurrencyRange(std::string_view range) {
  std::vector<int64_t> parts;
  std::string_view rest = range;
  while (true) {
    size_t colon = rest.find(':');
    auto v = ParsePositive(rest.substr(0, colon), "--concurrency-range '" + std::string(range) + "'");
    if (!v.ok()) return v.status();
    parts.push_back(*v);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  if (parts.size() > 3) return InvalidArgument("--concurrency-range '" + std::string(range) + "': expected a:b:step");
  int64_t first = parts[0];
  int64_t last = parts.size() > 1 ? parts[1] : first;
  int64_t step = parts.size() > 2 ? parts[2] : 1;
  if (last < first) {
    return InvalidArgument("--concurrency-range '" + std::string(range) + "': the end is below the start");
  }
  if (last > 10000) return InvalidArgument("--concurrency-range '" + std::string(range) + "': at most 10000");
  std::vector<int> levels;
  for (int64_t c = first; c <= last; c += step) levels.push_back(static_cast<int>(c));
  return levels;
}

Result<std::pair<std::string, std::vector<int64_t>>> ParseShapeOption(std::string_view option) {
  size_t colon = option.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == option.size()) {
    return InvalidArgument("--shape '" + std::string(option) + "': expected NAME:d1,d2,...");
  }
  std::pair<std::string, std::vector<int64_t>> out{std::string(option.substr(0, colon)), {}};
  std::string_view dims = option.substr(colon + 1);
  while (true) {
    size_t comma = dims.find(',');
    auto d = ParsePositive(dims.substr(0, comma), "--shape '" + std::string(option) + "'");
    if (!d.ok()) return d.status();
    out.second.push_back(*d);
    if (comma == std::string_view::npos) break;
    dims.remove_prefix(comma + 1);
  }
  return out;
}

Result<ReportFormat> ParseReportFormat(std::string_view name) {
  if (name == "table") return ReportFormat::kTable;
  if (name == "json") return ReportFormat::kJson;
  if (name == "csv") return ReportFormat::kCsv;
  return InvalidArgument("--format '" + std::string(name) + "': expected table, json or csv");
}

int64_t PercentileOfSorted(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  // Nearest rank: the smallest value with at least p% of the values at or below it.
  // The epsilon keeps representation error (99.9% of 1000 = 999.0000000000001) from adding a rank.
  double rank = std::ceil(p * static_cast<double>(sorted.size()) / 100.0 - 1e-9);
  size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

// Request bodies.

namespace {

struct InputSpec {
  std::string name;
  DataType dtype = DataType::kFp32;
  std::vector<int64_t> shape;  // as the metadata gives it: -1 for any size
};

struct ModelMetadata {
  std::vector<InputSpec> inputs;
  // berth (like Triton) writes a batched model's shapes with a leading -1 and
  // offers no max_batch_size in the metadata, so that leading -1 is how the
  // batch dimension is recognised.
  bool batched = false;
};

Result<ModelMetadata> ParseMetadata(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(body.data(), body.size()).get(doc)) {
    return InvalidArgument(std::string("model metadata is not JSON: ") + simdjson::error_message(err));
  }
  simdjson::dom::array inputs;
  if (doc["inputs"].get(inputs)) return InvalidArgument("model metadata has no \"inputs\" array");
  ModelMetadata meta;
  for (simdjson::dom::element in : inputs) {
    InputSpec spec;
    std::string_view name, dtype;
    simdjson::dom::array shape;
    if (in["name"].get(name) || in["datatype"].get(dtype) || in["shape"].get(shape)) {
      return InvalidArgument("model metadata: an input lacks name, datatype or shape");
    }
    spec.name = std::string(name);
    auto dt = ParseDataType(dtype);
    if (!dt) return InvalidArgument("model metadata: input '" + spec.name + "': unknown datatype");
    spec.dtype = *dt;
    for (simdjson::dom::element d : shape) {
      int64_t v = 0;
      if (d.get(v)) return InvalidArgument("model metadata: input '" + spec.name + "': bad shape");
      spec.shape.push_back(v);
    }
    if (meta.inputs.empty()) meta.batched = !spec.shape.empty() && spec.shape[0] == -1;
    meta.inputs.push_back(std::move(spec));
  }
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

// The binary tensor extension: a JSON header with binary_data_size per input
// and a request for binary outputs, then the inputs' bytes in order.
std::string EncodeBinaryRequest(const InferRequest& req, size_t* json_length) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  if (req.has_id) {
    w.Key("id");
    w.String(req.id);
  }
  w.Key("inputs");
  w.BeginArray();
  for (const Tensor& t : req.inputs) {
    w.BeginObject();
    WriteTensorHeader(w, t.name, DataTypeName(t.dtype), t.shape);
    w.Key("parameters");
    w.BeginObject();
    w.Key("binary_data_size");
    w.Int(t.data.size());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  if (!req.outputs.empty()) {
    w.Key("outputs");
    w.BeginArray();
    for (const RequestedOutput& o : req.outputs) {
      w.BeginObject();
      w.Key("name");
      w.String(o.name);
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("parameters");
  w.BeginObject();
  w.Key("binary_data_output");
  w.Bool(true);
  w.EndObject();
  w.EndObject();
  *json_length = out.size();
  for (const Tensor& t : req.inputs) out.append(t.data.begin(), t.data.end());
  return out;
}

// One GET with a deadline covering connect, write and read.
Result<http::response<http::string_body>> HttpGet(const tcp::resolver::results_type& endpoints,
                                                  const std::string& host_header, const std::string& target,
                                                  std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host_header);
  http::response<http::string_body> res;
  beast::error_code failure;
  std::string_view stage = "connect";
  stream.expires_after(timeout);
  stream.async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
    if (ec) return void(failure = ec);
    stage = "send the request";
    http::async_write(stream, req, [&](beast::error_code ec, size_t) {
      if (ec) return void(failure = ec);
      stage = "read the answer";
      http::async_read(stream, buffer, res, [&](beast::error_code ec, size_t) { failure = ec; });
    });
  });
  ioc.run();
  if (failure) {
    std::string why = failure == beast::error::timeout ? "timed out after " + std::to_string(timeout.count()) + " ms"
                                                       : failure.message();
    return Unavailable("cannot " + std::string(stage) + ": " + why);
  }
  return res;
}

}  // namespace

struct LoadGenerator::Target {
  tcp::resolver::results_type endpoints;
  std::string request;  // the whole serialized HTTP request, sent as-is by every connection
};

// The closed loop.

namespace {

// What every connection of one level shares, read-only while the level runs.
struct LoopContext {
  const tcp::resolver::results_type* endpoints;
  const std::string* request;  // the whole serialized HTTP request
  Clock::time_point start;     // the measurement window
  Clock::time_point end;
  std::chrono::milliseconds timeout;
  bool check_outputs;
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
      : stream_(ioc), backoff_(ioc), ctx_(ctx), stats_(stats) {}

  void Connect() {
    stream_.expires_after(ctx_.timeout);
    stream_.async_connect(*ctx_.endpoints, [this](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return Fail(ec);
      beast::error_code ignored;
      stream_.socket().set_option(tcp::no_delay(true), ignored);
      Send();
    });
  }

 private:
  void Send() {
    sent_at_ = Clock::now();
    if (sent_at_ >= ctx_.end) return;  // its answer could not be counted
    stream_.expires_after(ctx_.timeout);
    asio::async_write(stream_, asio::buffer(*ctx_.request), [this](beast::error_code ec, size_t) {
      if (ec) return Fail(ec);
      parser_.emplace();
      parser_->body_limit(kMaxResponseBytes);
      http::async_read(stream_, buffer_, *parser_, [this](beast::error_code ec, size_t) { OnAnswer(ec); });
    });
  }

  void OnAnswer(beast::error_code ec) {
    if (ec) return Fail(ec);
    Clock::time_point now = Clock::now();
    const auto& res = parser_->get();
    if (ctx_.InWindow(now)) Record(res, now);
    if (res.keep_alive()) return Send();
    stream_.close();
    buffer_.clear();
    Connect();
  }

  void Record(const http::response<http::string_body>& res, Clock::time_point now) {
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
  bool HasOutputs(const http::response<http::string_body>& res) {
    std::string_view body = res.body();
    if (auto it = res.find("Inference-Header-Content-Length"); it != res.end()) {
      size_t n = 0;
      std::string_view v = it->value();
      auto [p, e] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (e != std::errc() || p != v.data() + v.size() || n > body.size()) return false;
      body = body.substr(0, n);
    }
    simdjson::dom::element doc;
    simdjson::dom::array outputs;
    return !parser_json_.parse(body.data(), body.size()).get(doc) && !doc["outputs"].get(outputs);
  }

  void Fail(beast::error_code ec) {
    if (ctx_.InWindow(Clock::now())) {
      ++stats_->counts.requests;
      ++(ec == beast::error::timeout ? stats_->counts.timeouts : stats_->counts.connection_errors);
    }
    stream_.close();
    buffer_.clear();
    // A timed-out request may still be answered later; only a fresh connection
    // keeps that answer from being read as the next one's.
    if (ec == beast::error::timeout) return Connect();
    backoff_.expires_after(kReconnectBackoff);
    backoff_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec) Connect();
    });
  }

  beast::tcp_stream stream_;
  asio::steady_timer backoff_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
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

  auto target = std::make_unique<Target>();
  {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    target->endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return Unavailable("cannot resolve '" + url.host + "' in " + options.url + ": " + ec.message());
  }
  bool ipv6 = url.host.find(':') != std::string::npos;
  std::string host_header = (ipv6 ? "[" + url.host + "]" : url.host) + ":" + url.port;
  std::string model_path = url.prefix + "/v2/models/" + PercentEncode(options.model);
  if (options.version > 0) model_path += "/versions/" + std::to_string(options.version);

  auto answer = HttpGet(target->endpoints, host_header, model_path, std::chrono::milliseconds(options.timeout_ms));
  if (!answer.ok()) return Unavailable("server " + options.url + " is unreachable: " + answer.status().message());
  if (answer->result_int() != 200) {
    std::string what = "model '" + options.model + "'" +
                       (options.version > 0 ? " version " + std::to_string(options.version) : std::string()) +
                       ": GET " + model_path + " answered " + std::to_string(answer->result_int()) + " " +
                       std::string(answer->reason());
    if (!answer->body().empty()) what += ": " + answer->body().substr(0, 500);
    return NotFound(what);
  }
  auto meta = ParseMetadata(answer->body());
  if (!meta.ok()) return meta.status().WithContext("GET " + model_path);
  if (options.batch_size > 1 && !meta->batched) {
    return InvalidArgument("--batch-size " + std::to_string(options.batch_size) + ": model '" + options.model +
                           "' takes no batch dimension");
  }

  // The JSON body: the file byte for byte, or random data from the metadata.
  std::string body;
  int64_t rows = meta->batched ? options.batch_size : 1;
  std::string source = "the synthesized request";
  if (!options.input_data_path.empty()) {
    if (!options.shapes.empty()) return InvalidArgument("--shape does not apply to --input-data");
    source = "--input-data " + options.input_data_path;
    std::ifstream in(options.input_data_path, std::ios::binary);
    std::ostringstream text;
    if (!in || !(text << in.rdbuf())) return InvalidArgument(source + ": cannot read the file, or it is empty");
    body = text.str();
  } else {
    ASSIGN_OR_RETURN(body, SynthesizeRequest(*meta, options));
  }
  // Decoding finds a broken file before any load is sent, counts a file's
  // rows, and gives the tensors that a binary body carries.
  auto decoded = DecodeInferRequest(body, std::nullopt);
  if (!decoded.ok()) return decoded.status().WithContext(source);
  if (!options.input_data_path.empty() && meta->batched && !decoded->inputs.empty() &&
      !decoded->inputs[0].shape.empty()) {
    rows = decoded->inputs[0].shape[0];
  }
  std::optional<size_t> json_length;
  if (options.binary) {
    size_t n = 0;
    body = EncodeBinaryRequest(*decoded, &n);
    json_length = n;
  }

  http::request<http::string_body> req{http::verb::post, model_path + "/infer", 11};
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
  gen->description_ = RunDescription{options.url,      options.model,     rows, options.binary, req.body().size(),
                                     options.warmup_s, options.duration_s};
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
  LoopContext ctx{&target_->endpoints,   &target_->request, {}, {}, std::chrono::milliseconds(options_.timeout_ms),
                  options_.check_outputs};
  ctx.start = Clock::now() + seconds(options_.warmup_s);
  ctx.end = ctx.start + seconds(options_.duration_s);

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

  LevelResult out;
  out.connections = connections;
  out.duration_s = options_.duration_s;
  std::vector<int64_t> latencies;
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

// Reports.

namespace {

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string StatusCounts(const LevelResult& r) {
  std::string out;
  for (const auto& [status, n] : r.status_counts) {
    if (!out.empty()) out += " ";
    out += std::to_string(status) + ":" + std::to_string(n);
  }
  return out;
}

std::string FormatTable(const RunDescription& run, const std::vector<LevelResult>& levels) {
  std::string out = "berth bench " + run.url + "  model " + run.model + "  batch " + std::to_string(run.batch_size) +
                    "  " + (run.binary ? "binary" : "json") + " body " + std::to_string(run.request_bytes) +
                    " B  warmup " + Fixed(run.warmup_s, 1) + " s  window " + Fixed(run.duration_s, 1) + " s\n";
  char line[256];
  std::snprintf(line, sizeof line, "%11s %10s %11s %11s %9s %9s %9s %9s %9s %8s\n", "connections", "requests", "req/s",
                "rows/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "errors");
  out += line;
  for (const LevelResult& r : levels) {
    std::snprintf(line, sizeof line, "%11d %10lld %11.1f %11.1f %9lld %9lld %9lld %9lld %9lld %8lld\n", r.connections,
                  static_cast<long long>(r.requests), r.throughput_rps, r.throughput_rows_per_s,
                  static_cast<long long>(r.p50_us), static_cast<long long>(r.p90_us), static_cast<long long>(r.p99_us),
                  static_cast<long long>(r.p999_us), static_cast<long long>(r.max_us),
                  static_cast<long long>(r.errors()));
    out += line;
  }
  for (const LevelResult& r : levels) {
    if (r.errors() == 0) continue;
    out += "errors with " + std::to_string(r.connections) + (r.connections == 1 ? " connection" : " connections") +
           ": connection " + std::to_string(r.connection_errors) + ", timeouts " + std::to_string(r.timeouts) +
           ", non-2xx " + std::to_string(r.non_2xx) + ", invalid answers " + std::to_string(r.invalid_responses);
    if (!r.status_counts.empty()) out += " (status " + StatusCounts(r) + ")";
    out += "\n";
  }
  return out;
}

// The numeric fields of one level's record, in the order both CSV and JSON use.
std::vector<std::pair<std::string_view, std::string>> NumericFields(const LevelResult& r) {
  auto i = [](int64_t v) { return std::to_string(v); };
  return {{"connections", i(r.connections)},
          {"requests", i(r.requests)},
          {"duration_s", Fixed(r.duration_s, 3)},
          {"throughput_rps", Fixed(r.throughput_rps, 1)},
          {"p50_us", i(r.p50_us)},
          {"p90_us", i(r.p90_us)},
          {"p99_us", i(r.p99_us)},
          {"p999_us", i(r.p999_us)},
          {"max_us", i(r.max_us)},
          {"errors", i(r.errors())},
          {"non_2xx", i(r.non_2xx)},
          {"throughput_rows_per_s", Fixed(r.throughput_rows_per_s, 1)},
          {"mean_us", Fixed(r.mean_us, 1)},
          {"connection_errors", i(r.connection_errors)},
          {"timeouts", i(r.timeouts)},
          {"invalid_responses", i(r.invalid_responses)}};
}

std::string FormatJson(const RunDescription& run, const std::vector<LevelResult>& levels) {
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  for (const LevelResult& r : levels) {
    w.BeginObject();
    w.Key("model");
    w.String(run.model);
    w.Key("batch_size");
    w.Int(run.batch_size);
    for (const auto& [key, value] : NumericFields(r)) {
      w.Key(key);
      w.Raw(value);
    }
    w.Key("status_counts");
    w.BeginObject();
    for (const auto& [status, n] : r.status_counts) {
      w.Key(std::to_string(status));
      w.Int(n);
    }
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  return out + "\n";
}

std::string FormatCsv(const std::vector<LevelResult>& levels) {
  std::string out;
  for (const auto& field : NumericFields(LevelResult{})) out += std::string(field.first) + ",";
  out += "status_counts\n";
  for (const LevelResult& r : levels) {
    for (const auto& field : NumericFields(r)) out += field.second + ",";
    out += StatusCounts(r) + "\n";
  }
  return out;
}

}  // namespace

std::string FormatResults(const RunDescription& run, const std::vector<LevelResult>& levels, ReportFormat format) {
  switch (format) {
    case ReportFormat::kJson: return FormatJson(run, levels);
    case ReportFormat::kCsv: return FormatCsv(levels);
    case ReportFormat::kTable: break;
  }
  return FormatTable(run, levels);
}

}  // namespace berth
