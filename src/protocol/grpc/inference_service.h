// GRPCInferenceService over the InferenceServer (grpc_server.h wires it).
// Unary RPCs in inference_service.cc, ModelStreamInfer in infer_stream.cc.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>

#include "protocol/grpc/grpc_codec.h"
#include "protocol/grpc/inference.grpc.pb.h"
#include "server/access_policy.h"
#include "server/inference_server.h"

namespace berth {

class InferenceService final : public inference::GRPCInferenceService::CallbackService {
 public:
  InferenceService(InferenceServer* server, const AccessPolicy* access, std::atomic<int64_t>* in_flight)
      : server_(server), access_(access), in_flight_(in_flight) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx, const inference::ServerLiveRequest* req,
                                       inference::ServerLiveResponse* resp) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx, const inference::ServerReadyRequest* req,
                                        inference::ServerReadyResponse* resp) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx, const inference::ModelReadyRequest* req,
                                       inference::ModelReadyResponse* resp) override;
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx,
                                           const inference::ServerMetadataRequest* req,
                                           inference::ServerMetadataResponse* resp) override;
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx, const inference::ModelMetadataRequest* req,
                                          inference::ModelMetadataResponse* resp) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx, const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* resp) override;
  grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>* ModelStreamInfer(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext* ctx, const inference::ModelConfigRequest* req,
                                        inference::ModelConfigResponse* resp) override;
  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext* ctx,
                                            const inference::ModelStatisticsRequest* req,
                                            inference::ModelStatisticsResponse* resp) override;
  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* ctx,
                                            const inference::RepositoryIndexRequest* req,
                                            inference::RepositoryIndexResponse* resp) override;
  grpc::ServerUnaryReactor* RepositoryModelLoad(grpc::CallbackServerContext* ctx,
                                                const inference::RepositoryModelLoadRequest* req,
                                                inference::RepositoryModelLoadResponse* resp) override;
  grpc::ServerUnaryReactor* RepositoryModelUnload(grpc::CallbackServerContext* ctx,
                                                  const inference::RepositoryModelUnloadRequest* req,
                                                  inference::RepositoryModelUnloadResponse* resp) override;

  // One inference, as ModelInfer and each message of a stream run it: checks
  // the caller's credentials and the deadline, decodes, runs, encodes into
  // `out` and calls `done` exactly once (possibly on this thread).
  void RunInfer(grpc::CallbackServerContext* ctx, const inference::ModelInferRequest& in,
                inference::ModelInferResponse* out, std::function<void(Status)> done);

  // The credential the call carried ("" for none).
  static std::string_view Authorization(const grpc::CallbackServerContext* ctx);

  std::atomic<int64_t>& in_flight() { return *in_flight_; }

 private:
  InferenceServer* server_;
  const AccessPolicy* access_;
  std::atomic<int64_t>* in_flight_;
};

// ModelStreamInfer's reactor (infer_stream.cc).
grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>* NewInferStream(
    InferenceService* service, grpc::CallbackServerContext* ctx);

}  // namespace berth
