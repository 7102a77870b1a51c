// The HTTP request path as the server runs it: bytes -> berth's request
// parser (Beast with berth's field and trailer rules) -> the head checks
// (framing, Host, Expect) -> the v2 handler's admission and handling, over a
// real InferenceServer with identity models. Up to four pipelined requests.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>

#include "fuzz_util.h"
#include "protocol/http/request_parser.h"
#include "protocol/http/v2_handler.h"
#include "server/inference_server.h"

namespace {

namespace fs = std::filesystem;

struct Env {
  std::unique_ptr<berth::InferenceServer> server;
  std::unique_ptr<berth::V2Handler> handler;
  Env() {
    fs::path repo = fs::temp_directory_path() / ("berth-http-fuzz-" + std::to_string(::getpid()));
    auto model = [&](const std::string& name, const std::string& yaml) {
      fs::create_directories(repo / name / "1");
      std::ofstream(repo / name / "model.yaml") << yaml;
    };
    model("m",
          "backend: identity\nmax_batch_size: 0\ninputs: [{name: x, datatype: INT32, shape: [-1]}]\n"
          "outputs: [{name: y, datatype: INT32, shape: [-1]}]\n");
    model("b",
          "backend: identity\nmax_batch_size: 4\ninputs: [{name: x, datatype: FP32, shape: [2]},"
          " {name: s, datatype: BYTES, shape: [1]}]\noutputs: [{name: y, datatype: FP32, shape: [2]},"
          " {name: t, datatype: BYTES, shape: [1]}]\ndynamic_batching: {max_queue_delay_us: 100}\n");
    berth::InferenceServer::Options o;
    o.repository.root = repo.string();
    o.repository.backend_dir = BERTH_FUZZ_BACKEND_DIR;
    server = std::move(berth::InferenceServer::Create(o)).value();
    server->LoadAll();
    server->MarkLoaded();
    berth::V2Handler::Options vo;
    vo.max_body_bytes = 1 << 20;
    vo.offload_bytes = 1 << 12;  // large bodies take the worker path too
    handler = std::make_unique<berth::V2Handler>(server.get(), berth::AccessPolicy(), vo);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env env;
  namespace http = boost::beast::http;
  boost::asio::const_buffer rest(data, size);
  for (int n = 0; n < 4 && rest.size() > 0; ++n) {
    berth::RequestParser parser(16 << 10);
    parser.header_limit(16 << 10);
    parser.body_limit(1 << 20);
    parser.eager(true);
    boost::beast::error_code ec;
    size_t used = parser.put(rest, ec);
    if (ec == http::error::need_more || (!ec && !parser.is_done())) {
      parser.put_eof(ec);  // the connection ends here
    }
    if (ec || !parser.is_done()) return 0;
    rest += used;
    if (berth::CheckRequestHead(parser)) return 0;  // refused and closed
    berth::HttpRequest req = parser.release();
    if (env.handler->Admit(req)) return 0;
    (void)env.handler->Essential(req);
    auto answered = std::make_shared<std::promise<berth::HttpResponse>>();
    auto future = answered->get_future();
    env.handler->Handle(std::move(req), [answered](berth::HttpResponse&& res) { answered->set_value(std::move(res)); });
    if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) __builtin_trap();  // never unanswered
    berth::HttpResponse res = future.get();
    unsigned status = res.result_int();
    if (status == 500) __builtin_trap();  // identity models never fail: a 500 is a bug of the request path
  }
  return 0;
}
