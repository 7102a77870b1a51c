// The gRPC front end: KServe v2's GRPCInferenceService (wire-compatible with
// tritonclient.grpc) and grpc.health.v1.Health on one port, over the
// InferenceServer. Runs on gRPC's callback API: an RPC holds no thread while
// its request waits in a model's queue, and the answer is written from the
// executor thread that produced it.
#pragma once

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "berth/status.h"
#include "server/access_policy.h"
#include "server/front_end.h"
#include "server/inference_server.h"

namespace berth {

class HealthService;
class InferenceService;

class GrpcServer final : public FrontEnd {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    uint16_t port = 8001;
    // The largest request message, decompressed (--max-request-bytes).
    int64_t max_message_bytes = 64 << 20;
    // A connection must send HTTP/2's preface and SETTINGS within this
    // (--read-timeout-secs), and one with no call open is closed after
    // idle_timeout_secs (--idle-timeout-secs), as on the HTTP port. 0 = gRPC's default.
    int read_timeout_secs = 0;
    int idle_timeout_secs = 0;
    // Plaintext when null (TLS: grpc::SslServerCredentials).
    std::shared_ptr<grpc::ServerCredentials> credentials;
  };

  // Binds the port and starts serving (answers before Start are fine: the
  // health service says whether models are ready).
  static Result<std::unique_ptr<GrpcServer>> Create(Options options, InferenceServer* server, AccessPolicy access);
  ~GrpcServer() override;

  Status Start() override { return Status::Ok(); }
  void BeginDrain() override;
  int64_t InFlight() const override { return in_flight_.load(std::memory_order_relaxed); }
  void Stop() override;
  const char* name() const override { return "gRPC"; }

  uint16_t port() const { return port_; }

 private:
  explicit GrpcServer(AccessPolicy access);

  AccessPolicy access_;
  std::atomic<int64_t> in_flight_{0};
  std::unique_ptr<InferenceService> inference_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> grpc_;
  uint16_t port_ = 0;
  bool stopped_ = false;
};

}  // namespace berth
