// An HTTP/1.1 server on Boost.Beast: keep-alive, bounded headers and bodies
// (chunked bodies included), read/idle timeouts, and a graceful drain on
// SIGTERM/SIGINT. It knows nothing of inference: requests go to an HttpHandler.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <memory>
#include <string>

#include "berth/status.h"

namespace berth {

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
};

class HttpServer {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    uint16_t port = 8000;
    int threads = 1;
    uint64_t max_body_bytes = 64ull << 20;
    uint32_t max_header_bytes = 16 << 10;
    int read_timeout_secs = 30;
    int idle_timeout_secs = 60;
    int shutdown_grace_secs = 10;
    // Called once, on an I/O thread, when SIGTERM or SIGINT arrives.
    std::function<void()> on_shutdown;
  };

  // Binds and listens. Error if the address is invalid or the port is taken.
  static Result<std::unique_ptr<HttpServer>> Create(const Options& options, HttpHandler* handler);

  // Listens on another port of the same host with its own handler (e.g.
  // metrics); call before Run(). Returns the bound port (useful with 0).
  Result<uint16_t> AddListener(uint16_t port, HttpHandler* handler);
  ~HttpServer();

  // Serves until a signal, then stops accepting, waits for in-flight
  // requests (at most shutdown_grace_secs) and returns. Returns false when
  // the grace period ran out with requests still in flight.
  bool Run();

  uint16_t port() const { return port_; }
  bool draining() const { return draining_.load(); }
  // Requests read and not yet answered (written), on every listener.
  const std::atomic<int64_t>& in_flight() const;

  // Internal: per-connection bookkeeping.
  struct Shared;

 private:
  HttpServer() = default;
  std::unique_ptr<Shared> shared_;
  uint16_t port_ = 0;
  std::atomic<bool> draining_{false};
};

}  // namespace berth
