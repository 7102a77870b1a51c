// grpc.health.v1.Health, which Kubernetes gRPC probes and load balancers
// call. Services: "" and "live" are SERVING while the process runs; "ready"
// (and "inference.GRPCInferenceService") are SERVING once the models are
// loaded and until draining starts. Watch streams every change, checked
// every 100 ms by one thread for all watchers.
#pragma once

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "protocol/grpc/health.grpc.pb.h"
#include "server/inference_server.h"

namespace berth {

class HealthWatch;

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

  explicit HealthService(const InferenceServer* server);
  ~HealthService() override;  // Shutdown()

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::health::v1::HealthCheckResponse* resp) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req) override;

  // SERVICE_UNKNOWN for a name berth does not serve.
  ServingStatus StatusOf(const std::string& service) const;

  // Ends every watch (UNAVAILABLE) and stops the polling thread; before the gRPC server shuts down.
  void Shutdown();

  // HealthWatch registers itself while it runs.
  void Add(HealthWatch* watch);
  void Remove(HealthWatch* watch);

 private:
  void Poll();

  const InferenceServer* server_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::set<HealthWatch*> watches_;
  bool stopping_ = false;
  std::thread poller_;
};

}  // namespace berth
