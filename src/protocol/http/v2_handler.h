// Open Inference Protocol v2 over HTTP: routing and one function per
// endpoint family (server, health, model metadata/ready, infer, repository).
#pragma once

#include <atomic>

#include "protocol/http/http_server.h"
#include "repository/model_repository.h"

namespace berth {

class V2Handler final : public HttpHandler {
 public:
  // `repository` and `draining` outlive the handler.
  V2Handler(ModelRepository* repository, const std::atomic<bool>* draining)
      : repository_(repository), draining_(draining) {}

  void Handle(HttpRequest&& request, Responder respond) override;

 private:
  HttpResponse ServerMetadata() const;
  HttpResponse Ready() const;
  HttpResponse ModelMetadata(std::string_view model, int64_t version) const;
  HttpResponse ModelReady(std::string_view model, int64_t version) const;
  HttpResponse RepositoryIndex(const HttpRequest& request) const;
  void Infer(HttpRequest&& request, std::string_view model, int64_t version, Responder respond);

  ModelRepository* repository_;
  const std::atomic<bool>* draining_;
};

}  // namespace berth
