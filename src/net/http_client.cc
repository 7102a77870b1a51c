#include "net/http_client.h"

#include <openssl/ssl.h>
#include <pthread.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <future>
#include <sstream>

namespace berth {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

HttpConnection::HttpConnection(asio::io_context& ioc, const Url& origin, const HttpClientOptions& options)
    : ioc_(ioc), origin_(origin), options_(options) {
  if (origin_.tls) {
    tls_context_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    beast::error_code ignored;
    if (options_.verify_tls) {
      // An unreadable --cacert trusts nothing: the handshake then fails, naming the certificate.
      if (options_.ca_file.empty()) {
        tls_context_->set_default_verify_paths(ignored);
      } else {
        tls_context_->load_verify_file(options_.ca_file, ignored);
      }
      tls_context_->set_verify_mode(ssl::verify_peer);
    } else {
      tls_context_->set_verify_mode(ssl::verify_none);
    }
  }
}

HttpConnection::~HttpConnection() { Close(); }

template <class F>
void HttpConnection::WithStream(F&& f) {
  if (tls_) {
    f(*tls_);
  } else {
    f(*plain_);
  }
}

Status HttpConnection::Failed(const char* stage, const beast::error_code& ec) const {
  std::string where = origin_.host + ":" + origin_.port + ": " + stage + " failed: ";
  if (ec == beast::error::timeout) return Status(StatusCode::kDeadlineExceeded, where + "timed out");
  return Unavailable(where + ec.message());
}

void HttpConnection::Close() {
  beast::error_code ignored;
  if (tls_) beast::get_lowest_layer(*tls_).socket().close(ignored);
  if (plain_) plain_->socket().close(ignored);
  open_ = false;
}

void HttpConnection::AsyncConnect(Done done) {
  auto self = shared_from_this();
  auto resolver = std::make_shared<tcp::resolver>(ioc_);
  resolver->async_resolve(
      origin_.host, origin_.port,
      [self, resolver, done = std::move(done)](beast::error_code ec, tcp::resolver::results_type endpoints) mutable {
        if (ec) return done(self->Failed("resolving the host", ec));
        self->AsyncConnect(endpoints, std::move(done));
      });
}

void HttpConnection::AsyncConnect(const tcp::resolver::results_type& endpoints, Done done) {
  auto self = shared_from_this();
  Close();
  buffer_.clear();
  // flat_buffer reads at most its free capacity (512 bytes when empty): answers are read 64 KiB at a time
  // (a 1 MiB answer took ~2,000 reads and ~10 ms of client CPU without this; the server's sessions do the same).
  buffer_.reserve(64 << 10);
  beast::tcp_stream* lowest;
  if (origin_.tls) {
    tls_.emplace(beast::tcp_stream(ioc_), *tls_context_);
    lowest = &beast::get_lowest_layer(*tls_);
  } else {
    plain_.emplace(ioc_);
    lowest = &*plain_;
  }
  lowest->expires_after(options_.connect_timeout);
  lowest->async_connect(endpoints, [self, done = std::move(done)](beast::error_code ec, const tcp::endpoint&) {
    if (ec) return done(self->Failed("connect", ec));
    beast::error_code ignored;
    auto& s = self->tls_ ? beast::get_lowest_layer(*self->tls_) : *self->plain_;
    s.socket().set_option(tcp::no_delay(true), ignored);
    if (!self->tls_) {
      self->open_ = true;
      return done(Status::Ok());
    }
    if (!SSL_set_tlsext_host_name(self->tls_->native_handle(), self->origin_.host.c_str())) {
      return done(Internal("TLS: cannot set the server name"));
    }
    if (self->options_.verify_tls) self->tls_->set_verify_callback(ssl::host_name_verification(self->origin_.host));
    self->tls_->async_handshake(ssl::stream_base::client, [self, done](beast::error_code ec) {
      if (ec) return done(self->Failed("TLS handshake", ec));
      self->open_ = true;
      done(Status::Ok());
    });
  });
}

void HttpConnection::ReadAnswer(uint64_t max_response_bytes, bool head, Done done) {
  closed_unanswered_ = false;
  parser_.emplace();
  parser_->body_limit(max_response_bytes);
  if (head) parser_->skip(true);
  auto self = shared_from_this();
  WithStream([&](auto& stream) {
    http::async_read(stream, buffer_, *parser_, [self, done = std::move(done)](beast::error_code ec, size_t) {
      if (ec) {
        // The server closed the connection before sending a byte of its answer (for TLS, maybe without
        // close_notify): what a server does to a kept-alive connection it has timed out. (A server that died
        // while working on the request looks the same; a retry then repeats it, as browsers and Go's client do.)
        self->closed_unanswered_ =
            (ec == http::error::end_of_stream || ec == ssl::error::stream_truncated) && !self->parser_->got_some();
        self->Close();
        return done(self->Failed("reading the answer", ec));
      }
      done(Status::Ok());
    });
  });
}

void HttpConnection::AsyncExchange(std::string_view raw, uint64_t max_response_bytes, bool head, Done done) {
  auto self = shared_from_this();
  WithStream([&](auto& stream) {
    beast::get_lowest_layer(stream).expires_after(options_.request_timeout);
    asio::async_write(stream, asio::buffer(raw.data(), raw.size()),
                      [self, max_response_bytes, head, done = std::move(done)](beast::error_code ec, size_t) {
                        if (ec) {
                          self->closed_unanswered_ = ec != beast::error::timeout;
                          self->Close();
                          return done(self->Failed("sending the request", ec));
                        }
                        self->ReadAnswer(max_response_bytes, head, std::move(done));
                      });
  });
}

void HttpConnection::AsyncExchangeFile(http::request<http::file_body> request, uint64_t max_response_bytes, Done done) {
  auto self = shared_from_this();
  file_request_.emplace(std::move(request));
  WithStream([&](auto& stream) {
    beast::get_lowest_layer(stream).expires_after(options_.request_timeout);
    http::async_write(stream, *file_request_,
                      [self, max_response_bytes, done = std::move(done)](beast::error_code ec, size_t) {
                        self->file_request_.reset();
                        if (ec) {
                          self->closed_unanswered_ = ec != beast::error::timeout;
                          self->Close();
                          return done(self->Failed("sending the request", ec));
                        }
                        self->ReadAnswer(max_response_bytes, false, std::move(done));
                      });
  });
}

// ---------------------------------------------------------------------------

struct HttpClient::Exchange {
  HttpClientRequest request;
  Callback done;
  std::string raw;  // the serialized request (string bodies)
  std::shared_ptr<HttpConnection> connection;
};

namespace {

template <class Body>
void SetHeaders(http::request<Body>& r, const HttpClientRequest& req, const std::string& user_agent) {
  r.set(http::field::host, req.url.HostHeader());
  r.set(http::field::user_agent, user_agent);
  for (const auto& [k, v] : req.headers) r.set(k, v);
  r.keep_alive(true);
}

HttpClientResponse Convert(const HttpConnection::Response& msg) {
  HttpClientResponse out;
  out.status = static_cast<int>(msg.result_int());
  out.reason = std::string(msg.reason());
  out.body = msg.body();
  for (const auto& f : msg) {
    std::string name(f.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  return out;
}

}  // namespace

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {
  work_.emplace(ioc_.get_executor());
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "berth-client");
    ioc_.run();
  });
}

HttpClient::~HttpClient() {
  work_.reset();
  ioc_.stop();
  thread_.join();
}

void HttpClient::SendAsync(HttpClientRequest request, Callback done) {
  auto exchange = std::make_shared<Exchange>();
  exchange->done = std::move(done);
  if (request.body_file.empty()) {
    http::request<http::string_body> r{request.method, request.url.target, 11};
    SetHeaders(r, request, options_.user_agent);
    r.body() = request.body;
    r.prepare_payload();
    std::ostringstream wire;
    wire << r;
    exchange->raw = wire.str();
  }
  exchange->request = std::move(request);
  asio::post(ioc_, [this, exchange] { Start(exchange, false); });
}

void HttpClient::Start(std::shared_ptr<Exchange> ex, bool fresh) {
  const std::string origin = ex->request.url.Origin();
  auto& idle = idle_[origin];
  bool pooled = false;
  // The retry goes on a new connection: the other idle ones have waited as long and may be closed too.
  while (!fresh && !idle.empty() && !ex->connection) {
    ex->connection = std::move(idle.back());
    idle.pop_back();
    if (!ex->connection->open()) ex->connection.reset();
  }
  if (ex->connection) {
    pooled = true;
  } else {
    ex->connection = std::make_shared<HttpConnection>(ioc_, ex->request.url, options_);
  }
  auto send = [this, ex, pooled](Status connected) {
    if (!connected.ok()) return Finish(ex, connected);
    auto after = [this, ex, pooled](Status s) {
      // A kept-alive connection the server closed in the meantime: once more, fresh. Never after the
      // server may have acted on the request (an answer begun, a timeout): the caller decides on retries.
      if (!s.ok() && pooled && ex->connection->closed_unanswered()) {
        ex->connection.reset();
        return Start(ex, true);
      }
      Finish(ex, s);
    };
    const HttpClientRequest& req = ex->request;
    if (req.body_file.empty()) {
      ex->connection->AsyncExchange(ex->raw, req.max_response_bytes, req.method == http::verb::head, after);
      return;
    }
    http::request<http::file_body> r{req.method, req.url.target, 11};
    SetHeaders(r, req, options_.user_agent);
    beast::error_code ec;
    r.body().open(req.body_file.c_str(), beast::file_mode::scan, ec);
    if (ec) return Finish(ex, FailedPrecondition(req.body_file + ": cannot be read: " + ec.message()));
    r.prepare_payload();
    ex->connection->AsyncExchangeFile(std::move(r), req.max_response_bytes, after);
  };
  if (pooled) return send(Status::Ok());
  ex->connection->AsyncConnect(send);
}

void HttpClient::Finish(std::shared_ptr<Exchange> ex, Status status) {
  Callback done = std::move(ex->done);
  if (!status.ok()) return done(status);
  HttpClientResponse response = Convert(ex->connection->response());
  if (ex->connection->reusable()) {
    auto& idle = idle_[ex->request.url.Origin()];
    if (idle.size() < options_.max_idle_per_origin) idle.push_back(std::move(ex->connection));
  }
  done(std::move(response));
}

Result<HttpClientResponse> HttpClient::Send(HttpClientRequest request) {
  std::promise<Result<HttpClientResponse>> promise;
  auto future = promise.get_future();
  SendAsync(std::move(request), [&promise](Result<HttpClientResponse> r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace berth
