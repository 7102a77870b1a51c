// The HTTP/1.1 client every part of berth that talks to another server uses
// (registry push, `berth bench`, remote pipeline steps): keep-alive
// connections pooled per origin, TLS through OpenSSL (certificates and host
// names verified against the system's CA store, SSL_CERT_FILE honoured),
// and a deadline on every request, so that a silent server costs a timeout,
// never a hung caller.
//
// HttpClient owns an I/O thread: SendAsync's callback runs there; Send
// waits for it. HttpConnection is one such connection, usable on its own on
// any io_context (the load generator's closed loop drives many of them).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "berth/status.h"
#include "net/url.h"

namespace berth {

struct HttpClientRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  Url url;
  std::map<std::string, std::string> headers;  // Host and User-Agent are set by the client
  std::string body;
  std::string body_file;  // when set, the body is streamed from this file instead
  uint64_t max_response_bytes = uint64_t{16} << 20;
};

struct HttpClientResponse {
  int status = 0;
  std::string reason;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string header(const std::string& lower_case_name) const {
    auto it = headers.find(lower_case_name);
    return it == headers.end() ? "" : it->second;
  }
};

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{30'000};
  // Writing the request and reading the whole answer. Long by default: image
  // layers of hundreds of MB go over slow links.
  std::chrono::milliseconds request_timeout{30 * 60'000};
  bool verify_tls = true;  // false: TLS without checking the certificate (--insecure-registry)
  std::string ca_file;     // PEM CAs to trust instead of the system's (berth bench --cacert)
  std::string user_agent = "berth";
  size_t max_idle_per_origin = 8;
};

// One keep-alive HTTP/1.1 connection, plain or TLS. Not thread-safe: use it
// from one strand. Errors are Unavailable (or DeadlineExceeded for a
// timeout), with messages "host:port: <stage> failed: <why>", the stage being
// "connect", "TLS handshake", "sending the request" or "reading the answer".
class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  using Done = std::function<void(Status)>;

  HttpConnection(boost::asio::io_context& ioc, const Url& origin, const HttpClientOptions& options);
  ~HttpConnection();

  // Resolves, connects and (for https) handshakes. Again after Close() or a
  // failure: a fresh connection.
  void AsyncConnect(Done done);
  // The same, to endpoints resolved before (a client that reconnects often).
  void AsyncConnect(const boost::asio::ip::tcp::resolver::results_type& endpoints, Done done);
  // Writes `raw` (a whole serialized request) and reads one answer into
  // response() (kept until the next exchange).
  void AsyncExchange(std::string_view raw, uint64_t max_response_bytes, bool head, Done done);
  // The same for a request with a body streamed from a file.
  void AsyncExchangeFile(boost::beast::http::request<boost::beast::http::file_body> request,
                         uint64_t max_response_bytes, Done done);

  const Response& response() const { return parser_->get(); }
  bool open() const { return open_; }
  // Reusable after this answer: both sides keep the connection alive.
  bool reusable() const { return open_ && parser_ && parser_->get().keep_alive(); }
  // The last exchange failed in a way that means a kept-alive connection
  // went stale: the write failed, or the server closed the connection
  // without a byte of answer. Only then is it sent again on a fresh one.
  bool closed_unanswered() const { return closed_unanswered_; }
  void Close();

 private:
  template <class F>
  void WithStream(F&& f);
  Status Failed(const char* stage, const boost::beast::error_code& ec) const;
  void ReadAnswer(uint64_t max_response_bytes, bool head, Done done);

  boost::asio::io_context& ioc_;
  Url origin_;
  HttpClientOptions options_;
  std::unique_ptr<boost::asio::ssl::context> tls_context_;  // https only
  std::optional<boost::beast::tcp_stream> plain_;
  std::optional<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser_;
  std::optional<boost::beast::http::request<boost::beast::http::file_body>> file_request_;
  bool open_ = false;
  bool closed_unanswered_ = false;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  // Closes every connection. Requests still in flight are dropped with
  // their callbacks: destroy a client only once nothing waits on it.
  ~HttpClient();

  using Callback = std::function<void(Result<HttpClientResponse>)>;
  // Sends `request` on an idle pooled connection to its origin, or a new
  // one, and calls `done` on the client's I/O thread. A pooled connection
  // that the server closed meanwhile (no byte of answer) is retried once on
  // a fresh connection; no other failure is retried here.
  void SendAsync(HttpClientRequest request, Callback done);
  // SendAsync, waiting for the answer. Thread-safe, but never from one of
  // this client's own callbacks (they run on the thread it would wait for).
  Result<HttpClientResponse> Send(HttpClientRequest request);

  const HttpClientOptions& options() const { return options_; }

 private:
  struct Exchange;
  // `fresh`: on a new connection, not an idle pooled one (the one retry of a stale pooled connection).
  void Start(std::shared_ptr<Exchange> exchange, bool fresh);
  void Finish(std::shared_ptr<Exchange> exchange, Status status);

  HttpClientOptions options_;
  boost::asio::io_context ioc_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  // Idle connections by origin; touched on the I/O thread only.
  std::map<std::string, std::vector<std::shared_ptr<HttpConnection>>> idle_;
};

}  // namespace berth
