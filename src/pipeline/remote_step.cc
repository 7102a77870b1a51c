#include "pipeline/remote_step.h"

#include <algorithm>
#include <charconv>

#include "common/file_util.h"

namespace berth {

using Clock = std::chrono::steady_clock;

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

// The status of a remote's HTTP answer, with its {"error": ...} message.
Status FromHttp(const HttpClientResponse& r) {
  std::string message = "answered " + std::to_string(r.status);
  size_t key = r.body.find("\"error\"");
  if (key != std::string::npos) {
    size_t open = r.body.find('"', r.body.find(':', key) + 1);
    size_t close = open == std::string::npos ? open : r.body.find('"', open + 1);
    while (close != std::string::npos && r.body[close - 1] == '\\') close = r.body.find('"', close + 1);
    if (close != std::string::npos) message += ": " + r.body.substr(open + 1, std::min<size_t>(close - open - 1, 500));
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

}  // namespace

RemoteStep::RemoteStep(const PipelineStep& step, std::chrono::milliseconds timeout)
    : remote_(*step.remote), retries_(step.retries) {
  where_ = "remote " + remote_.url + " model " + remote_.model;
  HttpClientOptions o;
  o.connect_timeout = std::min<std::chrono::milliseconds>(timeout, std::chrono::milliseconds(5000));
  o.request_timeout = timeout;
  o.user_agent = "berth-pipeline";
  o.max_idle_per_origin = 64;
  client_ = std::make_unique<HttpClient>(o);
}

Result<std::unique_ptr<RemoteStep>> RemoteStep::Create(const PipelineStep& step, std::chrono::milliseconds timeout) {
  std::unique_ptr<RemoteStep> s(new RemoteStep(step, timeout));
  const RemoteModel& m = *step.remote;
  if (!m.token_file.empty()) {
    Result<std::string> token = ReadRegularFile(m.token_file, 4096);
    if (!token.ok()) return InvalidArgument("remote.token_file: " + token.status().message());
    s->token_ = std::move(token).value();
    while (!s->token_.empty() && (s->token_.back() == '\n' || s->token_.back() == '\r')) s->token_.pop_back();
  }
  std::string path = "/v2/models/" + PercentEncode(m.model) +
                     (m.version > 0 ? "/versions/" + std::to_string(m.version) : std::string());
  ASSIGN_OR_RETURN(Url base, ParseUrl(m.url + path));
  s->infer_url_ = base;
  s->infer_url_.target += "/infer";
  HttpClientRequest get;
  get.url = base;
  if (!s->token_.empty()) get.headers["Authorization"] = "Bearer " + s->token_;
  Result<HttpClientResponse> answer = s->client_->Send(get);
  if (!answer.ok()) return Unavailable(s->where_ + ": metadata: " + answer.status().message());
  if (answer->status != 200) return Status(FromHttp(*answer)).WithContext(s->where_ + ": metadata");
  Result<V2ModelMetadata> meta = DecodeModelMetadata(answer->body);
  if (!meta.ok()) return meta.status().WithContext(s->where_ + ": metadata");
  s->metadata_ = std::move(meta).value();
  return s;
}

int64_t RemoteStep::DownForMs() const {
  return std::max<int64_t>(0, down_until_ms_.load(std::memory_order_relaxed) - NowMs());
}

void RemoteStep::Record(bool ok) {
  if (ok) {
    failures_in_a_row_.store(0, std::memory_order_relaxed);
    return;
  }
  if (failures_in_a_row_.fetch_add(1, std::memory_order_relaxed) + 1 >= kTripAfter) {
    down_until_ms_.store(NowMs() + kDownFor.count(), std::memory_order_relaxed);
    failures_in_a_row_.store(0, std::memory_order_relaxed);
  }
}

void RemoteStep::Infer(std::unique_ptr<InferRequest> request, Clock::time_point deadline, InferCompletion done) {
  Send(std::shared_ptr<InferRequest>(std::move(request)), deadline, retries_, std::move(done));
}

void RemoteStep::Send(std::shared_ptr<InferRequest> request, Clock::time_point deadline, int tries_left,
                      InferCompletion done) {
  int64_t down = down_until_ms_.load(std::memory_order_relaxed) - NowMs();
  if (down > 0) {
    return done(Unavailable("marked down after " + std::to_string(kTripAfter) + " failures in a row; trying again in " +
                            std::to_string(down) + " ms"));
  }
  if (deadline != Clock::time_point::max()) {
    int64_t left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
    if (left <= 0) return done(Status(StatusCode::kDeadlineExceeded, "the deadline passed"));
    request->timeout_us = left;  // the remote queue's deadline: what is left of ours
  }
  EncodedRequest body = EncodeInferRequest(*request, /*binary=*/true);
  HttpClientRequest post;
  post.method = boost::beast::http::verb::post;
  post.url = infer_url_;
  post.headers["Content-Type"] = "application/octet-stream";
  post.headers["Inference-Header-Content-Length"] = std::to_string(*body.json_length);
  if (!token_.empty()) post.headers["Authorization"] = "Bearer " + token_;
  post.body = std::move(body.body);
  post.max_response_bytes = uint64_t{1} << 30;
  client_->SendAsync(std::move(post), [this, request, deadline, tries_left,
                                       done = std::move(done)](Result<HttpClientResponse> answer) mutable {
    Status failed;
    if (!answer.ok()) {
      failed = Status(answer.status().code() == StatusCode::kDeadlineExceeded ? StatusCode::kDeadlineExceeded
                                                                              : StatusCode::kUnavailable,
                      answer.status().message());
    } else if (answer->status != 200) {
      failed = FromHttp(*answer);
    }
    if (failed.ok()) {
      std::optional<uint64_t> json_length;
      std::string header = answer->header("inference-header-content-length");
      if (!header.empty()) {
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(header.data(), header.data() + header.size(), n);
        if (ec == std::errc() && p == header.data() + header.size()) json_length = n;
      }
      Result<InferResponse> response = DecodeInferResponse(answer->body, json_length);
      Record(true);
      if (!response.ok()) return done(Internal("its answer does not decode: " + response.status().message()));
      return done(std::move(response));
    }
    bool connection_failure = !answer.ok() && failed.code() == StatusCode::kUnavailable;
    bool unavailable = answer.ok() && answer->status == 503;
    // The breaker counts what says the target is unwell: no connection, no answer in time, a 5xx.
    bool target_failed =
        connection_failure || failed.code() == StatusCode::kDeadlineExceeded || (answer.ok() && answer->status >= 500);
    Record(!target_failed);
    if ((connection_failure || unavailable) && tries_left > 0) {
      return Send(request, deadline, tries_left - 1, std::move(done));
    }
    done(failed);
  });
}

}  // namespace berth
