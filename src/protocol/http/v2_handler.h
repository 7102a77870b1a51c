// Open Inference Protocol v2 over HTTP: routing, and one function per
// endpoint family (server, health, model metadata/ready, infer, repository),
// each translating between HTTP + JSON and the InferenceServer.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/worker_pool.h"
#include "protocol/http/http_server.h"
#include "server/access_policy.h"
#include "server/inference_server.h"

namespace berth {

class V2Handler final : public HttpHandler {
 public:
  struct Options {
    uint64_t max_body_bytes = uint64_t{64} << 20;  // decompressed bodies too (--max-request-bytes)
    // Bodies larger than this are decoded off the I/O thread, so that a
    // 60 MB JSON body never delays a health check (decoding it takes ~100 ms).
    size_t offload_bytes = 64 << 10;
    int decode_threads = 1;
  };
  // `server` outlives the handler.
  V2Handler(InferenceServer* server, AccessPolicy access, Options options);
  V2Handler(InferenceServer* server, AccessPolicy access) : V2Handler(server, std::move(access), Options()) {}

  void Handle(HttpRequest&& request, Responder respond) override;
  // Tokens are checked on the headers, before a body is read.
  std::optional<HttpResponse> Admit(const HttpRequest& headers) override;
  // Health checks get through when the server is at --max-connections.
  bool Essential(const HttpRequest& headers) const override;

  // The front end this handler serves: its count of requests in flight
  // goes with each inference (the server's inline-execution policy).
  void SetFrontEnd(const FrontEnd* front_end) { front_end_ = front_end; }

 private:
  HttpResponse ServerMetadata() const;
  HttpResponse Ready() const;
  HttpResponse ModelMetadata(std::string_view model, int64_t version) const;
  HttpResponse ModelReady(std::string_view model, int64_t version) const;
  // Triton's model configuration and statistics extensions (v2_triton.cc).
  HttpResponse ModelConfigJson(std::string_view model, int64_t version) const;
  HttpResponse ModelStatsJson(std::string_view model, int64_t version) const;
  HttpResponse RepositoryIndex(const HttpRequest& request) const;
  // GET /v2/openapi.json (v2_openapi.cc).
  HttpResponse OpenApi() const;
  // POST /v2/repository/models/{m}/load|unload (v2_repository.cc).
  void RepositoryControl(const HttpRequest& request, std::string_view model, bool load, Responder respond);
  void Infer(HttpRequest&& request, std::string_view model, int64_t version, Responder respond);
  // The options of an inference read on an event loop: whether it may run
  // inline there (a small body, and no other request of this loop waiting
  // on it), what the front end has in flight, when it arrived.
  InferOptions LoopInferOptions(const HttpRequest& request) const;
  // TF Serving's REST API under /v1 (tfserving_routes.cc).
  void HandleTfServing(HttpRequest&& request, const std::vector<std::string_view>& path, Responder respond);
  HttpResponse TfModelStatus(std::string_view model, int64_t version) const;
  HttpResponse TfModelMetadata(std::string_view model, int64_t version) const;
  void TfPredict(HttpRequest&& request, std::string_view model, int64_t version, Responder respond);

  InferenceServer* server_;
  AccessPolicy access_;
  Options options_;
  const FrontEnd* front_end_ = nullptr;
  std::unique_ptr<WorkerPool> decoders_;  // large bodies
};

}  // namespace berth
