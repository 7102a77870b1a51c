// Open Inference Protocol v2 over HTTP: routing, and one function per
// endpoint family (server, health, model metadata/ready, infer, repository),
// each translating between HTTP + JSON and the InferenceServer.
#pragma once

#include <string>

#include "protocol/http/http_server.h"
#include "server/access_policy.h"
#include "server/inference_server.h"

namespace berth {

class V2Handler final : public HttpHandler {
 public:
  // `server` outlives the handler.
  V2Handler(InferenceServer* server, AccessPolicy access) : server_(server), access_(std::move(access)) {}

  void Handle(HttpRequest&& request, Responder respond) override;

  // The front end this handler serves: its count of requests in flight
  // goes with each inference (the server's inline-execution policy).
  void SetFrontEnd(const FrontEnd* front_end) { front_end_ = front_end; }

 private:
  HttpResponse ServerMetadata() const;
  HttpResponse Ready() const;
  HttpResponse ModelMetadata(std::string_view model, int64_t version) const;
  HttpResponse ModelReady(std::string_view model, int64_t version) const;
  HttpResponse RepositoryIndex(const HttpRequest& request) const;
  // POST /v2/repository/models/{m}/load|unload (v2_repository.cc).
  void RepositoryControl(const HttpRequest& request, std::string_view model, bool load, Responder respond);
  void Infer(HttpRequest&& request, std::string_view model, int64_t version, Responder respond);

  InferenceServer* server_;
  AccessPolicy access_;
  const FrontEnd* front_end_ = nullptr;
};

}  // namespace berth
