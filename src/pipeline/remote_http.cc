// KServe v2 over HTTP/1.1 for remote steps: binary tensors, the shared
// keep-alive HttpClient (TLS for https), the answer's class from its status.
#include <simdjson.h>

#include <algorithm>
#include <charconv>

#include "net/http_client.h"
#include "pipeline/remote_transport.h"

namespace berth {

using Clock = std::chrono::steady_clock;

namespace {

// The status of a remote's non-200 answer, with its {"error": ...} message (at most 500 bytes of it).
Status FromHttp(const HttpClientResponse& r) {
  std::string message = "answered " + std::to_string(r.status);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view error;
  if (!parser.parse(r.body).get(doc) && !doc["error"].get(error)) {
    message += ": " + std::string(error.substr(0, 500));
  }
  StatusCode code = StatusCode::kInternal;
  if (r.status == 400 || r.status == 413 || r.status == 415) code = StatusCode::kInvalidArgument;
  if (r.status == 401) code = StatusCode::kUnauthenticated;
  if (r.status == 403) code = StatusCode::kPermissionDenied;
  if (r.status == 404 || r.status == 503 || r.status == 502) code = StatusCode::kUnavailable;
  if (r.status == 429) code = StatusCode::kResourceExhausted;
  if (r.status == 504) code = StatusCode::kDeadlineExceeded;
  return Status(code, message);
}

class HttpTransport final : public RemoteTransport {
 public:
  HttpTransport(std::string token, std::chrono::milliseconds timeout) : token_(std::move(token)) {
    HttpClientOptions o;
    o.connect_timeout = std::min<std::chrono::milliseconds>(timeout, std::chrono::milliseconds(5000));
    o.request_timeout = timeout;
    o.user_agent = "berth-pipeline";
    o.max_idle_per_origin = 64;
    client_ = std::make_unique<HttpClient>(o);
  }

  Status Init(const RemoteModel& m) {
    std::string path = "/v2/models/" + PercentEncode(m.model) +
                       (m.version > 0 ? "/versions/" + std::to_string(m.version) : std::string());
    ASSIGN_OR_RETURN(metadata_url_, ParseUrl(m.url + path));
    infer_url_ = metadata_url_;
    infer_url_.target += "/infer";
    return Status::Ok();
  }

  Result<V2ModelMetadata> FetchMetadata() override {
    HttpClientRequest get;
    get.url = metadata_url_;
    if (!token_.empty()) get.headers["Authorization"] = "Bearer " + token_;
    Result<HttpClientResponse> answer = client_->Send(get);
    if (!answer.ok()) return Unavailable(answer.status().message());
    if (answer->status != 200) return FromHttp(*answer);
    return DecodeModelMetadata(answer->body);
  }

  void Infer(const InferRequest& request, Clock::time_point, Done done) override {
    EncodedRequest body = EncodeInferRequest(request, /*binary=*/true);
    HttpClientRequest post;
    post.method = boost::beast::http::verb::post;
    post.url = infer_url_;
    post.headers["Content-Type"] = "application/octet-stream";
    post.headers["Inference-Header-Content-Length"] = std::to_string(*body.json_length);
    if (!token_.empty()) post.headers["Authorization"] = "Bearer " + token_;
    if (!request.traceparent.empty()) post.headers["traceparent"] = request.traceparent;
    post.body = std::move(body.body);
    post.max_response_bytes = uint64_t{1} << 30;
    client_->SendAsync(std::move(post), [done = std::move(done)](Result<HttpClientResponse> answer) {
      if (!answer.ok()) {
        bool late = answer.status().code() == StatusCode::kDeadlineExceeded;
        return done(Status(late ? StatusCode::kDeadlineExceeded : StatusCode::kUnavailable, answer.status().message()),
                    /*retryable=*/!late, /*target_failed=*/true);
      }
      if (answer->status != 200) return done(FromHttp(*answer), answer->status == 503, answer->status >= 500);
      std::optional<uint64_t> json_length;
      std::string header = answer->header("inference-header-content-length");
      if (!header.empty()) {
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(header.data(), header.data() + header.size(), n);
        if (ec == std::errc() && p == header.data() + header.size()) json_length = n;
      }
      Result<InferResponse> response = DecodeInferResponse(answer->body, json_length);
      if (!response.ok())
        return done(Internal("its answer does not decode: " + response.status().message()), false, false);
      done(std::move(response), false, false);
    });
  }

 private:
  std::string token_;
  Url metadata_url_, infer_url_;
  std::unique_ptr<HttpClient> client_;
};

}  // namespace

Result<std::unique_ptr<RemoteTransport>> NewHttpTransport(const RemoteModel& remote, std::string token,
                                                          std::chrono::milliseconds timeout) {
  auto t = std::make_unique<HttpTransport>(std::move(token), timeout);
  RETURN_IF_ERROR(t->Init(remote));
  return std::unique_ptr<RemoteTransport>(std::move(t));
}

}  // namespace berth
