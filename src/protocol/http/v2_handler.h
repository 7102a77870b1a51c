// Open Inference Protocol v2 over HTTP: routing and one function per
// endpoint family (server, health, model metadata/ready, infer, repository).
#pragma once

#include <atomic>
#include <string>

#include "protocol/http/http_server.h"
#include "repository/model_repository.h"

namespace berth {

class V2Handler final : public HttpHandler {
 public:
  struct Options {
    int64_t default_timeout_us = 0;       // queue timeout for requests that set none; 0 = none
    bool explicit_model_control = false;  // load/unload API enabled (--model-control-mode explicit)
    std::string admin_token;              // required for load/unload; "" = model control refused (403)
    std::string auth_token;               // required for everything but health; "" = open
  };

  // Lets an infer request run on the I/O thread that read it (see
  // InstancePool) only while at most `limit` requests are in flight: under
  // load the I/O threads are better spent reading and writing while
  // executors run models. Without a gauge, never.
  void SetInFlightGauge(const std::atomic<int64_t>* in_flight, int64_t limit) {
    in_flight_ = in_flight;
    inline_limit_ = limit;
  }

  // `repository` and `draining` outlive the handler.
  V2Handler(ModelRepository* repository, const std::atomic<bool>* draining, Options options)
      : repository_(repository), draining_(draining), options_(options) {}

  void Handle(HttpRequest&& request, Responder respond) override;

 private:
  HttpResponse ServerMetadata() const;
  HttpResponse Ready() const;
  HttpResponse ModelMetadata(std::string_view model, int64_t version) const;
  HttpResponse ModelReady(std::string_view model, int64_t version) const;
  HttpResponse RepositoryIndex(const HttpRequest& request) const;
  // POST /v2/repository/models/{m}/load|unload (v2_repository.cc).
  void RepositoryControl(const HttpRequest& request, std::string_view model, bool load, Responder respond);
  void Infer(HttpRequest&& request, std::string_view model, int64_t version, Responder respond);

  ModelRepository* repository_;
  const std::atomic<bool>* draining_;
  Options options_;
  const std::atomic<int64_t>* in_flight_ = nullptr;
  int64_t inline_limit_ = 0;
};

}  // namespace berth
