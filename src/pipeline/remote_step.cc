#include "pipeline/remote_step.h"

#include <algorithm>

#include "common/file_util.h"
#include "net/url.h"

namespace berth {

using Clock = std::chrono::steady_clock;

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

}  // namespace

RemoteStep::RemoteStep(const PipelineStep& step) : retries_(step.retries) {
  const RemoteModel& m = *step.remote;
  where_ = "remote " + m.url + " model " + m.model;
  if (m.protocol == RemoteProtocol::kGrpc) where_ += " over gRPC";
}

Result<std::unique_ptr<RemoteStep>> RemoteStep::Create(const PipelineStep& step, std::chrono::milliseconds timeout) {
  const RemoteModel& m = *step.remote;
  if (!m.url_variable.empty()) {
    // A URL from the environment is checked before anything quotes it: a bad one (user information, a
    // fragment) may hold a secret, so the error says what is wrong without the value.
    Result<Url> url = ParseUrl(m.url);
    if (!url.ok()) {
      const std::string& why = url.status().message();
      size_t cut = why.find("': ");
      return InvalidArgument("remote.url, from the environment variable it names: " +
                             (cut == std::string::npos ? std::string("not a valid URL") : why.substr(cut + 3)));
    }
  }
  std::unique_ptr<RemoteStep> s(new RemoteStep(step));
  std::string token;
  if (!m.token_file.empty()) {
    Result<std::string> read = ReadRegularFile(m.token_file, 4096);
    if (!read.ok()) return InvalidArgument("remote.token_file: " + read.status().message());
    token = std::move(read).value();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  }
  ASSIGN_OR_RETURN(s->transport_, m.protocol == RemoteProtocol::kGrpc ? NewGrpcTransport(m, std::move(token), timeout)
                                                                      : NewHttpTransport(m, std::move(token), timeout));
  Result<V2ModelMetadata> meta = s->transport_->FetchMetadata();
  if (!meta.ok()) {
    return Status(meta.status().code() == StatusCode::kInternal || meta.status().code() == StatusCode::kUnavailable ||
                          meta.status().code() == StatusCode::kDeadlineExceeded
                      ? StatusCode::kUnavailable
                      : meta.status().code(),
                  s->where_ + ": metadata: " + meta.status().message());
  }
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
  transport_->Infer(*request, deadline,
                    [this, request, deadline, tries_left, done = std::move(done)](
                        Result<InferResponse> answer, bool retryable, bool target_failed) mutable {
                      Record(!target_failed);
                      if (!answer.ok() && retryable && tries_left > 0) {
                        return Send(request, deadline, tries_left - 1, std::move(done));
                      }
                      done(std::move(answer));
                    });
}

}  // namespace berth
