#include "protocol/grpc/health_service.h"

#include <chrono>

namespace berth {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch call: writes the status now and on every change, until the
// client cancels or the server shuts down.
class HealthWatch final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  HealthWatch(HealthService* health, std::string service) : health_(health), service_(std::move(service)) {
    health_->Add(this);
    Poll();
  }

  // Called by the service's poller (under its lock) and once at the start.
  void Poll() {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || writing_) return;
    HealthService::ServingStatus now = health_->StatusOf(service_);
    if (sent_ && now == last_) return;
    last_ = now;
    sent_ = true;
    response_.set_status(now);
    writing_ = true;
    StartWrite(&response_);
  }

  void End(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(std::move(status));
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) FinishLocked(grpc::Status::CANCELLED);
  }

  void OnCancel() override { End(grpc::Status::CANCELLED); }

  void OnDone() override {
    health_->Remove(this);
    delete this;
  }

 private:
  void FinishLocked(grpc::Status status) {
    if (finished_) return;
    finished_ = true;
    Finish(std::move(status));
  }

  HealthService* health_;
  const std::string service_;
  std::mutex mu_;
  HealthCheckResponse response_;
  HealthService::ServingStatus last_ = HealthCheckResponse::UNKNOWN;
  bool sent_ = false;
  bool writing_ = false;
  bool finished_ = false;
};

HealthService::HealthService(const InferenceServer* server) : server_(server), poller_([this] { Poll(); }) {}

HealthService::~HealthService() { Shutdown(); }

HealthService::ServingStatus HealthService::StatusOf(const std::string& service) const {
  if (service.empty() || service == "live") return HealthCheckResponse::SERVING;
  if (service == "ready" || service == "inference.GRPCInferenceService") {
    return server_->Ready().ok() ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
  }
  return HealthCheckResponse::SERVICE_UNKNOWN;
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* ctx, const HealthCheckRequest* req,
                                               HealthCheckResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  ServingStatus s = StatusOf(req->service());
  if (s == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 "unknown service (berth serves \"\", \"live\", \"ready\" and "
                                 "\"inference.GRPCInferenceService\")"));
  } else {
    resp->set_status(s);
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(grpc::CallbackServerContext*,
                                                                    const HealthCheckRequest* req) {
  return new HealthWatch(this, req->service());
}

void HealthService::Add(HealthWatch* watch) {
  std::lock_guard<std::mutex> lock(mu_);
  watches_.insert(watch);
  if (stopping_) watch->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
}

void HealthService::Remove(HealthWatch* watch) {
  std::lock_guard<std::mutex> lock(mu_);
  watches_.erase(watch);
}

void HealthService::Poll() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(100));
    if (stopping_) break;
    for (HealthWatch* w : watches_) w->Poll();
  }
}

void HealthService::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !poller_.joinable()) return;
    stopping_ = true;
    // Watchers see the last change (NOT_SERVING while draining) before their stream ends.
    for (HealthWatch* w : watches_) w->Poll();
    for (HealthWatch* w : watches_) w->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
  }
  wake_.notify_all();
  if (poller_.joinable()) poller_.join();
}

}  // namespace berth
