// An HTTP/1.1 server on Boost.Beast: keep-alive, bounded headers and bodies
// (chunked bodies included), read/idle timeouts, a drain that answers the
// requests already read. It knows nothing of inference: requests go to an
// HttpHandler. Signals and the drain's timing belong to the serve lifecycle
// (app/), which drives it as a FrontEnd.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "berth/status.h"
#include "server/front_end.h"

namespace berth {

class ReloadableTlsContext;

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
// Sends the response for one request. Call exactly once, from any thread.
using Responder = std::function<void(HttpResponse&&)>;

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Runs on an I/O thread: must not block. Hand slow work to other threads and
  // call `respond` from there.
  virtual void Handle(HttpRequest&& request, Responder respond) = 0;

  // Called with a request's headers (its body not yet read): an answer here
  // (say 401 for a missing token) is sent at once, the body is never read,
  // and the connection is closed. nullopt: read the body and Handle it.
  virtual std::optional<HttpResponse> Admit(const HttpRequest& headers) {
    (void)headers;
    return std::nullopt;
  }
  // Whether a request may use the connection reserve when the server is at
  // --max-connections (health checks must get through a flood of idle
  // connections). Decided on the headers.
  virtual bool Essential(const HttpRequest& headers) const {
    (void)headers;
    return false;
  }
};

class HttpServer final : public FrontEnd {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    uint16_t port = 8000;
    // Event loops, one thread each; every connection lives on one of them
    // (the least loaded when it was accepted).
    int threads = 1;
    uint64_t max_body_bytes = 64ull << 20;
    uint32_t max_header_bytes = 16 << 10;
    int read_timeout_secs = 30;
    int idle_timeout_secs = 60;
    // Open connections over every listener; 0 = what the descriptor limit
    // (RLIMIT_NOFILE) leaves. Beyond it, `reserve_connections` more are
    // accepted for essential requests only (HttpHandler::Essential: health
    // checks); everything else on them gets 503 and a close.
    int64_t max_connections = 0;
    int64_t reserve_connections = 32;
    // Request bodies held at once, over every connection (reserved from the
    // Content-Length, or chunk by chunk). A request that does not fit gets 503
    // with Retry-After before its body is read.
    uint64_t max_inflight_body_bytes = uint64_t{1} << 30;
    // The server's draining flag (InferenceServer::draining_flag()): once
    // set, a new request on an open connection is answered 503 and the
    // connection closed. Outlives the HttpServer. Null = never draining.
    const std::atomic<bool>* draining = nullptr;
    // TLS on every listener when set (outlives the HttpServer); its
    // current() context is taken by each new connection, so a reload
    // (SIGHUP) reaches new connections and drops none.
    ReloadableTlsContext* tls = nullptr;
  };

  // Binds and listens. Error if the address is invalid or the port is taken.
  static Result<std::unique_ptr<HttpServer>> Create(const Options& options, HttpHandler* handler);

  // Listens on another port of the same host with its own handler (e.g.
  // metrics); call before Start(). Returns the bound port (useful with 0).
  Result<uint16_t> AddListener(uint16_t port, HttpHandler* handler);
  ~HttpServer() override;

  Status Start() override;  // `threads` event loops, each on a thread named berth-http
  void BeginDrain() override;
  int64_t InFlight() const override;
  int64_t InFlightOnThisLoop() const override;
  void Stop() override;
  const char* name() const override { return "HTTP"; }

  uint16_t port() const { return port_; }

  // Internal: per-connection bookkeeping.
  struct Shared;

 private:
  HttpServer() = default;
  std::unique_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
};

}  // namespace berth
