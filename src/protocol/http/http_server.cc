#include "protocol/http/http_server.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "common/json_writer.h"

namespace berth {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct HttpServer::Shared {
  Options options;
  bool draining() const { return options.draining != nullptr && options.draining->load(); }
  std::atomic<int64_t> in_flight{0};
  net::io_context ioc;
  // Keeps the I/O threads running while nothing is pending on a socket (a
  // request executing elsewhere will post its response here).
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  struct Listener {
    Listener(net::io_context& ioc, HttpHandler* h) : acceptor(ioc), handler(h), retry(ioc) {}
    tcp::acceptor acceptor;
    HttpHandler* handler;
    net::steady_timer retry;
    std::chrono::steady_clock::time_point last_accept_warning;
  };
  std::vector<std::unique_ptr<Listener>> listeners;
};

namespace {

// Beast keeps a field's name and value lengths in 16 bits and throws
// std::length_error (from inside async_read, past every handler) for a longer
// one; refuse such a field as a header-limit error instead.
constexpr size_t kMaxFieldBytes = 65000;

// Beast's request parser, with two changes: a field too long for Beast is an
// error, not an exception, and the trailer section of a chunked body is
// counted and dropped. Trailer fields never join the headers that handlers
// read (RFC 9110 6.5.1: a recipient may discard them), so a trailer cannot
// add, say, an Authorization or Inference-Header-Content-Length after the
// headers were checked.
class RequestParser final : public http::request_parser<http::string_body> {
 public:
  explicit RequestParser(uint64_t max_trailer_bytes) : max_trailer_bytes_(max_trailer_bytes) {}

  // Why the last header_limit error happened ("" for Beast's own limit).
  const std::string& refusal() const { return refusal_; }

 private:
  void on_field_impl(http::field name, beast::string_view name_string, beast::string_view value,
                     beast::error_code& ec) override {
    if (name_string.size() > kMaxFieldBytes || value.size() > kMaxFieldBytes) {
      refusal_ = std::string(is_header_done() ? "a trailer field" : "a header field") + " is longer than " +
                 std::to_string(kMaxFieldBytes) + " bytes";
      ec = http::error::header_limit;
      return;
    }
    if (is_header_done()) {  // a trailer field
      trailer_bytes_ += name_string.size() + value.size() + 4;
      if (trailer_bytes_ > max_trailer_bytes_) {
        refusal_ = "the trailer section is larger than the limit of " + std::to_string(max_trailer_bytes_) +
                   " bytes (--max-header-bytes)";
        ec = http::error::header_limit;
      }
      return;
    }
    get().insert(name, name_string, value);
  }

  uint64_t max_trailer_bytes_;
  uint64_t trailer_bytes_ = 0;
  std::string refusal_;
};

// Checks the message framing that Beast leaves to us (RFC 9112 6.1): a
// Transfer-Encoding must end in exactly one `chunked`, with no other coding
// (we decode none), and only in HTTP/1.1. Anything else would let the body
// be read as the next request (request smuggling), so it is refused and the
// connection closed. Returns the status to answer with, or nullopt if fine.
std::optional<std::pair<http::status, std::string>> CheckFraming(const RequestParser& parser) {
  const auto& req = parser.get();
  auto [first, last] = req.equal_range(http::field::transfer_encoding);
  if (first == last) return std::nullopt;
  using Refusal = std::pair<http::status, std::string>;
  if (req.version() < 11) return Refusal{http::status::bad_request, "Transfer-Encoding in an HTTP/1.0 request"};
  std::vector<std::string> codings;
  for (auto it = first; it != last; ++it) {
    std::string_view v = it->value();
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view token = v.substr(0, comma);
      v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
      if (token.empty()) continue;
      std::string lower(token);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      codings.push_back(std::move(lower));
    }
  }
  if (codings.empty() || codings.back() != "chunked" || !parser.chunked()) {
    return Refusal{http::status::bad_request,
                   "Transfer-Encoding: the final transfer coding must be chunked (RFC 9112 6.1)"};
  }
  if (codings.size() == 1) return std::nullopt;
  if (std::count(codings.begin(), codings.end(), "chunked") > 1) {
    return Refusal{http::status::bad_request, "Transfer-Encoding: chunked is applied more than once"};
  }
  return Refusal{http::status::not_implemented,
                 "Transfer-Encoding: only chunked is supported (for compressed bodies use Content-Encoding)"};
}

HttpResponse PlainError(http::status status, const std::string& message, unsigned version) {
  HttpResponse res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = JsonError(message);
  res.keep_alive(false);
  return res;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Shared* shared, HttpHandler* handler)
      : stream_(std::move(socket)),
        // Bounded: what is buffered beyond the parser (a header block or a
        // trailer section being gathered, pipelined bytes) never outgrows the
        // header limit plus one read. Bodies go straight into their string.
        buffer_(static_cast<size_t>(shared->options.max_header_bytes) + (64 << 10)),
        shared_(shared),
        handler_(handler) {
    // flat_buffer reads at most its free capacity (512 bytes when empty): read bodies 64 KiB at a time.
    buffer_.reserve(64 << 10);
  }

  ~Session() { Done(); }  // a responder dropped without answering must not stall the drain

  void Start() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::ReadHeader, shared_from_this()));
  }

 private:
  const HttpServer::Options& opts() const { return shared_->options; }

  void ReadHeader() {
    parser_.emplace(opts().max_header_bytes);
    parser_->header_limit(opts().max_header_bytes);
    parser_->body_limit(opts().max_body_bytes);
    // A new connection must send its request promptly; a kept-alive one may idle longer.
    stream_.expires_after(std::chrono::seconds(requests_ == 0 ? opts().read_timeout_secs : opts().idle_timeout_secs));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    stream_.expires_after(std::chrono::seconds(opts().read_timeout_secs));
    if (auto refusal = CheckFraming(*parser_)) return WriteAndLinger(PlainError(refusal->first, refusal->second, 11));
    auto expect = parser_->get()[http::field::expect];
    if (beast::iequals(expect, "100-continue") && parser_->get().version() >= 11) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, parser_->get().version());
      http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
        if (ec) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    ++requests_;
    stream_.expires_never();  // inference may take a while; the write sets its own timeout
    keep_alive_ = parser_->get().keep_alive();
    version_ = parser_->get().version();
    // HEAD is GET without the body (RFC 9110 9.3.2): handlers see GET, Write drops the body.
    head_ = parser_->get().method() == http::verb::head;
    if (head_) parser_->get().method(http::verb::get);
    shared_->in_flight.fetch_add(1);
    counted_ = true;
    if (shared_->draining()) {
      // Draining: requests already running finish; a new one on a kept-alive connection is refused.
      Claim(requests_);
      return Write(PlainError(http::status::service_unavailable, "server is shutting down", version_));
    }
    // Always posted, also when answered on this I/O thread (an error, or a request run inline): writing from
    // inside the handler (dispatch) measured no faster at one connection on the build VM.
    Responder respond = [self = shared_from_this(), n = requests_](HttpResponse&& res) {
      if (!self->Claim(n)) return;  // answered already (see the catch below)
      net::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
    };
    try {
      handler_->Handle(parser_->release(), std::move(respond));
    } catch (const std::exception& e) {  // e.g. bad_alloc decoding a huge body: fail the request, not the server
      if (Claim(requests_)) {
        Write(PlainError(http::status::internal_server_error, std::string("internal error: ") + e.what(), version_));
      }
    }
  }

  // Request `n` (1, 2, ... on this connection) is answered once: the first claim wins.
  bool Claim(uint64_t n) {
    uint64_t previous = n - 1;
    return answered_.compare_exchange_strong(previous, n);
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset) {
      if (ec == beast::error::timeout) spdlog::debug("closing connection: read timed out");
      return Close();
    }
    if (ec == http::error::body_limit) {
      return WriteAndLinger(PlainError(http::status::payload_too_large,
                                       "request body is larger than the limit of " +
                                           std::to_string(opts().max_body_bytes) + " bytes (--max-request-bytes)",
                                       11));
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      std::string why = parser_ && !parser_->refusal().empty()
                            ? parser_->refusal()
                            : (parser_ && parser_->is_header_done() ? "the trailer section" : "request headers") +
                                  std::string(" are larger than the limit of ") +
                                  std::to_string(opts().max_header_bytes) + " bytes (--max-header-bytes)";
      return WriteAndLinger(PlainError(http::status::request_header_fields_too_large, why, 11));
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return WriteAndLinger(PlainError(http::status::bad_request, "malformed HTTP request: " + ec.message(), 11));
    }
    spdlog::debug("closing connection: {}", ec.message());
    Close();
  }

  void Write(HttpResponse&& res) {
    bool close = !keep_alive_ || shared_->draining();
    res.version(version_);
    res.keep_alive(!close);
    res.set(http::field::server, "berth");
    res.prepare_payload();
    if (head_) {
      auto length = res[http::field::content_length];
      std::string kept(length);
      res.body().clear();
      res.set(http::field::content_length, kept);
    }
    response_.emplace(std::move(res));  // kept until the write completes
    stream_.expires_after(std::chrono::seconds(opts().read_timeout_secs));
    http::async_write(stream_, *response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->Done();
      bool close = ec || self->response_->need_eof();
      self->response_.reset();
      if (close) return self->Close();
      self->ReadHeader();
    });
  }

  // Sends an error for a request that could not be read, then closes after
  // letting the client finish sending, so that it sees the response.
  void WriteAndLinger(HttpResponse&& res) {
    res.set(http::field::server, "berth");
    res.keep_alive(false);
    res.prepare_payload();
    auto sp = std::make_shared<HttpResponse>(std::move(res));
    stream_.expires_after(std::chrono::seconds(opts().read_timeout_secs));
    http::async_write(stream_, *sp, [self = shared_from_this(), sp](beast::error_code ec, std::size_t) {
      if (ec) return self->Close();
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->linger_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      self->Linger();
    });
  }

  void Linger() {
    if (std::chrono::steady_clock::now() >= linger_deadline_) return Close();
    stream_.expires_at(linger_deadline_);
    discard_.resize(64 << 10);
    stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->Close();
      self->Linger();
    });
  }

  void Done() {
    if (counted_) {
      counted_ = false;
      shared_->in_flight.fetch_sub(1);
    }
  }

  void Close() {
    Done();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  HttpServer::Shared* shared_;  // outlives every session: it owns the io_context
  HttpHandler* handler_;
  std::optional<RequestParser> parser_;
  std::optional<HttpResponse> response_;  // being written
  std::vector<char> discard_;
  std::chrono::steady_clock::time_point linger_deadline_;
  uint64_t requests_ = 0;
  std::atomic<uint64_t> answered_{0};  // the last request answered (Claim)
  bool keep_alive_ = true;
  bool counted_ = false;
  bool head_ = false;
  unsigned version_ = 11;
};

void Accept(HttpServer::Shared* shared, HttpServer::Shared::Listener* l) {
  // With several I/O threads a connection's handlers run on a strand (its
  // timer and a response posted from an executor must not race); with one,
  // the io_context already serialises them and a strand only costs.
  net::any_io_executor executor = shared->options.threads > 1 ? net::any_io_executor(net::make_strand(shared->ioc))
                                                              : net::any_io_executor(shared->ioc.get_executor());
  l->acceptor.async_accept(executor, [shared, l](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !l->acceptor.is_open()) return;
    if (ec) {
      // Out of file descriptors (or similar): back off instead of spinning, and log once a second at most.
      auto now = std::chrono::steady_clock::now();
      if (now - l->last_accept_warning > std::chrono::seconds(1)) {
        spdlog::warn("accept failed: {}; retrying in 100 ms", ec.message());
        l->last_accept_warning = now;
      }
      l->retry.expires_after(std::chrono::milliseconds(100));
      l->retry.async_wait([shared, l](beast::error_code wait_ec) {
        if (!wait_ec && l->acceptor.is_open()) Accept(shared, l);
      });
      return;
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), shared, l->handler)->Start();
    }
    Accept(shared, l);
  });
}

// Runs the I/O loop until it stops. An exception that escapes a handler or
// an operation of one connection (whatever its cause) ends that operation,
// which closes the connection as its session is released; the loop goes on
// serving everyone else (Asio allows run() to be called again after a throw).
void RunIoLoop(net::io_context& ioc) {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("I/O loop: a connection failed with an exception ({}); it is closed, serving continues", e.what());
    } catch (...) {
      spdlog::error("I/O loop: a connection failed with an unknown exception; it is closed, serving continues");
    }
  }
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Create(const Options& options, HttpHandler* handler) {
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->shared_ = std::make_unique<Shared>();
  server->shared_->options = options;
  ASSIGN_OR_RETURN(server->port_, server->AddListener(options.port, handler));
  return server;
}

Result<uint16_t> HttpServer::AddListener(uint16_t port, HttpHandler* handler) {
  const std::string& host = shared_->options.host;
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) return InvalidArgument("--host: '" + host + "' is not an IP address");
  tcp::endpoint endpoint(address, port);
  auto l = std::make_unique<Shared::Listener>(shared_->ioc, handler);
  auto& acc = l->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return FailedPrecondition("cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  uint16_t bound = acc.local_endpoint().port();
  shared_->listeners.push_back(std::move(l));
  return bound;
}

HttpServer::~HttpServer() {
  if (!threads_.empty()) Stop();
}

int64_t HttpServer::InFlight() const { return shared_->in_flight.load(); }

Status HttpServer::Start() {
  Shared* shared = shared_.get();
  shared->work.emplace(shared->ioc.get_executor());
  for (auto& l : shared->listeners) Accept(shared, l.get());
  for (int i = 0; i < shared->options.threads; ++i) {
    threads_.emplace_back([shared] {
      pthread_setname_np(pthread_self(), "berth-http");
      RunIoLoop(shared->ioc);
    });
  }
  return Status::Ok();
}

void HttpServer::BeginDrain() {
  // On the I/O threads: acceptors are not thread-safe.
  Shared* shared = shared_.get();
  net::post(shared->ioc, [shared] {
    beast::error_code ignored;
    for (auto& l : shared->listeners) {
      l->acceptor.close(ignored);
      l->retry.cancel();
    }
  });
}

void HttpServer::Stop() {
  shared_->work.reset();
  shared_->ioc.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace berth
