#include "protocol/http/http_server.h"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "common/json_writer.h"
#include "net/tls_context.h"
#include "protocol/http/content_coding.h"
#include "protocol/http/request_parser.h"

namespace berth {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct HttpServer::Shared {
  Options options;
  bool draining() const { return options.draining != nullptr && options.draining->load(); }
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> connections{0};  // open sessions, over every listener
  int64_t max_connections = 0;          // resolved from the options and the descriptor limit
  std::atomic<uint64_t> body_bytes{0};  // request bodies being received or handled, reserved per request
  int spare_fd = -1;                    // given up to accept (and refuse) a connection when out of descriptors
  // Reserves `n` body bytes against --max-inflight-body-bytes; false when they do not fit.
  bool ReserveBody(uint64_t n) {
    uint64_t cur = body_bytes.load();
    do {
      if (n > options.max_inflight_body_bytes || cur > options.max_inflight_body_bytes - n) return false;
    } while (!body_bytes.compare_exchange_weak(cur, cur + n));
    return true;
  }
  // One event loop per I/O thread, each run by its own thread: a
  // connection lives on one loop from accept to close, so its handlers never
  // cross threads or need a strand, and loops share no queue or lock (one
  // io_context run by several threads measured slower than one thread).
  struct Loop {
    explicit Loop(const Shared* s) : owner(s) {}
    const Shared* owner;
    std::atomic<int64_t> sessions{0};   // connections living on this loop (outlive ioc: sessions die with it)
    std::atomic<int64_t> in_flight{0};  // requests read on this loop and not yet answered
    net::io_context ioc{1};             // concurrency hint: run by one thread (others may post to it)
    // Keeps the loop running while nothing is pending on a socket (a request
    // executing elsewhere will post its response here).
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  };
  std::vector<std::unique_ptr<Loop>> loops;
  // The loop a new connection goes to: the one with the fewest connections
  // (the first such; accepts run on loop 0).
  Loop* LeastLoaded() {
    Loop* best = loops.front().get();
    for (auto& l : loops) {
      if (l->sessions.load(std::memory_order_relaxed) < best->sessions.load(std::memory_order_relaxed)) best = l.get();
    }
    return best;
  }
  // Listeners accept on loop 0 and hand each connection to LeastLoaded().
  struct Listener {
    Listener(net::io_context& ioc, HttpHandler* h, tcp p) : acceptor(ioc), handler(h), retry(ioc), protocol(p) {}
    tcp::acceptor acceptor;
    HttpHandler* handler;
    net::steady_timer retry;
    tcp protocol;  // its address family, for the connections it hands to other loops
    std::chrono::steady_clock::time_point last_accept_warning;
  };
  std::vector<std::unique_ptr<Listener>> listeners;
};

namespace {

thread_local const HttpServer::Shared::Loop* this_loop = nullptr;  // set on each loop's thread

HttpResponse PlainError(http::status status, const std::string& message, unsigned version) {
  HttpResponse res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = JsonError(message);
  res.keep_alive(false);
  return res;
}

// One connection: plain (Stream = beast::tcp_stream) or TLS (beast::ssl_stream<beast::tcp_stream>).
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  Session(tcp::socket&& socket, HttpServer::Shared* shared, HttpServer::Shared::Loop* loop, HttpHandler* handler,
          bool reserve_only, std::shared_ptr<net::ssl::context> tls)
      : loop_(loop),
        tls_(std::move(tls)),
        stream_(MakeStream(std::move(socket), tls_.get())),
        // Bounded: what is buffered beyond the parser (a header block or a
        // trailer section being gathered, pipelined bytes) never outgrows the
        // header limit plus one read. Bodies go straight into their string.
        buffer_(static_cast<size_t>(shared->options.max_header_bytes) + (64 << 10)),
        shared_(shared),
        handler_(handler),
        reserve_only_(reserve_only) {
    chunk_budget_ = [this](std::uint64_t size, beast::string_view, beast::error_code& ec) {
      if (!shared_->ReserveBody(size)) {
        over_budget_ = true;
        ec = http::error::body_limit;
        return;
      }
      reserved_ += size;
    };
    // flat_buffer reads at most its free capacity (512 bytes when empty): read bodies 64 KiB at a time.
    buffer_.reserve(64 << 10);
  }

  ~Session() {
    Done();  // a responder dropped without answering must not stall the drain
    shared_->connections.fetch_sub(1);
    loop_->sessions.fetch_sub(1, std::memory_order_relaxed);
  }

  void Start() {
    if constexpr (kTls) {
      net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::Handshake, this->shared_from_this()));
    } else {
      net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::ReadHeader, this->shared_from_this()));
    }
  }

 private:
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

  static Stream MakeStream(tcp::socket&& socket, net::ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(beast::tcp_stream(std::move(socket)), *tls);
    } else {
      (void)tls;
      return Stream(std::move(socket));
    }
  }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // TLS: the handshake, bounded by the read timeout. A client that fails it
  // (plain HTTP sent to this port, no or a wrong client certificate, TLS
  // below 1.2) is logged and closed; everyone else is served as before.
  void Handshake() {
    Lowest().expires_after(std::chrono::seconds(opts().read_timeout_secs));
    stream_.async_handshake(net::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (!ec) return self->ReadHeader();
      self->LogHandshakeFailure(ec);
      self->Close();
    });
  }

  void LogHandshakeFailure(const beast::error_code& ec) {
    beast::error_code ignored;
    tcp::endpoint peer = Lowest().socket().remote_endpoint(ignored);
    std::string why = ec == beast::error::timeout ? "timed out" : ec.message();
    if (why.find("http request") != std::string::npos) why += ": the client spoke plain HTTP to the TLS port";
    // Rate-limited: a scanner must not flood the log.
    static std::atomic<int64_t> last_ms{0};
    int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
    int64_t prev = last_ms.load();
    if (now_ms - prev >= 1000 && last_ms.compare_exchange_strong(prev, now_ms)) {
      spdlog::warn("TLS handshake with {} failed ({}); connection closed", peer.address().to_string(), why);
    }
  }

  const HttpServer::Options& opts() const { return shared_->options; }

  void ReadHeader() {
    parser_.emplace(opts().max_header_bytes);
    parser_->header_limit(opts().max_header_bytes);
    parser_->body_limit(opts().max_body_bytes);
    // A chunked body reserves its bytes chunk by chunk (a Content-Length body at once, in OnHeader).
    parser_->on_chunk_header(chunk_budget_);
    // A new connection must send its request promptly; a kept-alive one may idle longer.
    // A connection of the reserve gets one second: it exists for a quick health check, and an idle one must not
    // keep the next health check out.
    auto timeout = reserve_only_
                       ? std::chrono::seconds(1)
                       : std::chrono::seconds(requests_ == 0 ? opts().read_timeout_secs : opts().idle_timeout_secs);
    Lowest().expires_after(timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    Lowest().expires_after(std::chrono::seconds(opts().read_timeout_secs));
    if (auto refusal = CheckRequestHead(*parser_))
      return WriteAndLinger(PlainError(refusal->first, refusal->second, 11));
    const HttpRequest& head = parser_->get();
    // Everything below is decided on the headers alone, before a byte of the
    // body is read (or 100 Continue invites it).
    if (shared_->draining()) {
      return WriteAndLinger(PlainError(http::status::service_unavailable, "server is shutting down", 11));
    }
    if (reserve_only_ && !handler_->Essential(head)) {
      HttpResponse res = PlainError(
          http::status::service_unavailable,
          "too many connections (--max-connections " + std::to_string(shared_->max_connections) + "); retry later", 11);
      res.set(http::field::retry_after, "1");
      return WriteAndLinger(std::move(res));
    }
    if (std::optional<HttpResponse> refused = handler_->Admit(head)) return WriteAndLinger(std::move(*refused));
    if (auto length = parser_->content_length(); length && *length > 0 && *length <= opts().max_body_bytes) {
      if (!shared_->ReserveBody(*length)) return RefuseOverBudget();
      reserved_ += *length;
    }
    if (head.find(http::field::expect) != head.end() && head.version() >= 11) {  // 100-continue (CheckRequestHead)
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, head.version());
      http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
        if (ec) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void RefuseOverBudget() {
    HttpResponse res = PlainError(http::status::service_unavailable,
                                  "too many request bodies in flight (--max-inflight-body-bytes " +
                                      std::to_string(opts().max_inflight_body_bytes) + "); retry later",
                                  11);
    res.set(http::field::retry_after, "1");
    WriteAndLinger(std::move(res));
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    ++requests_;
    Lowest().expires_never();  // inference may take a while; the write sets its own timeout
    keep_alive_ = parser_->get().keep_alive();
    version_ = parser_->get().version();
    auto accept = parser_->get().find(http::field::accept_encoding);
    response_coding_ =
        accept == parser_->get().end() ? ContentCoding::kIdentity : PreferredResponseCoding(accept->value());
    // HEAD is GET without the body (RFC 9110 9.3.2): handlers see GET, Write drops the body.
    head_ = parser_->get().method() == http::verb::head;
    if (head_) parser_->get().method(http::verb::get);
    shared_->in_flight.fetch_add(1);
    loop_->in_flight.fetch_add(1, std::memory_order_relaxed);
    counted_ = true;
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
    if (ec == http::error::body_limit && over_budget_) return RefuseOverBudget();
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
    bool close = !keep_alive_ || shared_->draining() || reserve_only_;  // the reserve serves one request
    res.version(version_);
    res.keep_alive(!close);
    res.set(http::field::server, "berth");
    if (response_coding_ != ContentCoding::kIdentity && res.body().size() >= kMinCompressedResponseBytes &&
        res.find(http::field::content_encoding) == res.end()) {
      if (std::optional<std::string> packed = EncodeBody(response_coding_, res.body())) {
        res.body() = std::move(*packed);
        res.set(http::field::content_encoding, response_coding_ == ContentCoding::kGzip ? "gzip" : "deflate");
        res.set(http::field::vary, "Accept-Encoding");
      }
    }
    res.prepare_payload();
    if (head_) {
      auto length = res[http::field::content_length];
      std::string kept(length);
      res.body().clear();
      res.set(http::field::content_length, kept);
    }
    response_.emplace(std::move(res));  // kept until the write completes
    Lowest().expires_after(std::chrono::seconds(opts().read_timeout_secs));
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
    Lowest().expires_after(std::chrono::seconds(opts().read_timeout_secs));
    http::async_write(stream_, *sp, [self = shared_from_this(), sp](beast::error_code ec, std::size_t) {
      if (ec) return self->Close();
      beast::error_code ignored;
      self->Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->linger_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      self->Linger();
    });
  }

  void Linger() {
    if (std::chrono::steady_clock::now() >= linger_deadline_) return Close();
    Lowest().expires_at(linger_deadline_);
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
      loop_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    }
    if (reserved_ > 0) {
      shared_->body_bytes.fetch_sub(reserved_);
      reserved_ = 0;
    }
  }

  void Close() {
    Done();
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  HttpServer::Shared::Loop* loop_;          // the event loop this connection lives on
  std::shared_ptr<net::ssl::context> tls_;  // TLS: the context this connection started with (kept across reloads)
  Stream stream_;
  beast::flat_buffer buffer_;
  HttpServer::Shared* shared_;  // outlives every session: it owns the event loops
  HttpHandler* handler_;
  std::optional<RequestParser> parser_;
  std::optional<HttpResponse> response_;  // being written
  std::vector<char> discard_;
  std::chrono::steady_clock::time_point linger_deadline_;
  uint64_t requests_ = 0;
  std::atomic<uint64_t> answered_{0};  // the last request answered (Claim)
  bool keep_alive_ = true;
  bool counted_ = false;
  bool reserve_only_;         // opened beyond --max-connections: essential requests only (health checks)
  bool over_budget_ = false;  // a chunk did not fit --max-inflight-body-bytes
  uint64_t reserved_ = 0;     // body bytes this request holds against the budget
  // Beast keeps a reference to the callback: it lives as long as the session.
  std::function<void(std::uint64_t, beast::string_view, beast::error_code&)> chunk_budget_;
  bool head_ = false;
  unsigned version_ = 11;
  ContentCoding response_coding_ = ContentCoding::kIdentity;  // from the request's Accept-Encoding
};

// Out of descriptors, a waiting client would sit in the backlog until it
// gives up. Give up the spare descriptor, accept one connection with it,
// answer 503 and close, then take the spare back: clients see a clean refusal.
void RefuseOneWithTheSpareFd(HttpServer::Shared* shared, HttpServer::Shared::Listener* l) {
  ::close(shared->spare_fd);
  shared->spare_fd = -1;
  int fd = ::accept4(l->acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) {
    static constexpr char kRefusal[] =
        "HTTP/1.1 503 Service Unavailable\r\nServer: berth\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
        "Content-Length: 50\r\nConnection: close\r\n\r\n{\"error\":\"server is out of file descriptors; retry\"}";
    (void)!::send(fd, kRefusal, sizeof kRefusal - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    ::close(fd);
  }
  shared->spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void Accept(HttpServer::Shared* shared, HttpServer::Shared::Listener* l) {
  l->acceptor.async_accept([shared, l](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !l->acceptor.is_open()) return;
    if (ec) {
      if (ec == net::error::no_descriptors && shared->spare_fd >= 0) RefuseOneWithTheSpareFd(shared, l);
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
    }
    int64_t open = shared->connections.fetch_add(1) + 1;
    if (open > shared->max_connections + shared->options.reserve_connections) {
      shared->connections.fetch_sub(1);  // past the reserve too: closed at once
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      bool reserve_only = open > shared->max_connections;
      // The connection moves to the least loaded loop for good: its handlers
      // (and a response posted from an executor) all run there, so they never
      // race and need no strand.
      HttpServer::Shared::Loop* loop = shared->LeastLoaded();
      if (loop != shared->loops.front().get()) {
        tcp::socket moved(loop->ioc);
        int fd = socket.release(ignored);
        if (fd >= 0) moved.assign(l->protocol, fd, ignored);
        if (fd >= 0 && ignored) ::close(fd);
        socket = std::move(moved);  // closed if the move failed: the client sees a reset, the loop goes on
      }
      loop->sessions.fetch_add(1, std::memory_order_relaxed);
      if (shared->options.tls != nullptr) {
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(socket), shared, loop, l->handler,
                                                                        reserve_only, shared->options.tls->current())
            ->Start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(std::move(socket), shared, loop, l->handler, reserve_only, nullptr)
            ->Start();
      }
    }
    Accept(shared, l);
  });
}

// --max-connections, or (0) what the descriptor limit allows: leave 64 for
// model files, plugins and the like, and room for the reserve.
int64_t ConnectionLimit(const HttpServer::Options& o) {
  if (o.max_connections > 0) return o.max_connections;
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 100000;
  int64_t fds = static_cast<int64_t>(rl.rlim_cur);
  return std::max<int64_t>(4, std::min<int64_t>(100000, fds - 64 - o.reserve_connections));
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
  server->shared_->max_connections = ConnectionLimit(options);
  server->shared_->spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    server->shared_->loops.push_back(std::make_unique<Shared::Loop>(server->shared_.get()));
  }
  ASSIGN_OR_RETURN(server->port_, server->AddListener(options.port, handler));
  return server;
}

Result<uint16_t> HttpServer::AddListener(uint16_t port, HttpHandler* handler) {
  const std::string& host = shared_->options.host;
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) return InvalidArgument("--host: '" + host + "' is not an IP address");
  tcp::endpoint endpoint(address, port);
  auto l = std::make_unique<Shared::Listener>(shared_->loops.front()->ioc, handler, endpoint.protocol());
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
  if (shared_ && shared_->spare_fd >= 0) ::close(shared_->spare_fd);
}

int64_t HttpServer::InFlight() const { return shared_->in_flight.load(); }

int64_t HttpServer::InFlightOnThisLoop() const {
  const Shared::Loop* loop = this_loop;
  return loop != nullptr && loop->owner == shared_.get() ? loop->in_flight.load(std::memory_order_relaxed) : -1;
}

Status HttpServer::Start() {
  Shared* shared = shared_.get();
  for (auto& loop : shared->loops) loop->work.emplace(loop->ioc.get_executor());
  for (auto& l : shared->listeners) Accept(shared, l.get());
  for (auto& loop : shared->loops) {
    threads_.emplace_back([loop = loop.get()] {
      pthread_setname_np(pthread_self(), "berth-http");
      this_loop = loop;
      RunIoLoop(loop->ioc);
    });
  }
  return Status::Ok();
}

void HttpServer::BeginDrain() {
  // Nothing to do: the listeners keep accepting until Stop, and a request
  // that arrives while the server drains is answered 503 with Connection:
  // close (Session::OnHeader), which load balancers take as a clean refusal
  // where a refused connection looks like a crash.
}

void HttpServer::Stop() {
  for (auto& loop : shared_->loops) {
    loop->work.reset();
    loop->ioc.stop();
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace berth
