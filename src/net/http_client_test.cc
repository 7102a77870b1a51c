#include "net/http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <fstream>
#include <thread>

namespace berth {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A loopback server that answers each request on a connection with
// `answer(n)` (n counts requests over the whole server), or stays silent.
class TinyServer {
 public:
  explicit TinyServer(std::function<std::string(int)> answer)
      : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}), answer_(std::move(answer)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~TinyServer() {
    stop_ = true;
    boost::system::error_code ignored;
    tcp::socket poke(ioc_);
    poke.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
    for (auto& t : connection_threads_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  int connections() const { return connections_; }
  std::string last_request() {
    std::lock_guard<std::mutex> l(mu_);
    return last_;
  }

 private:
  void Loop() {
    while (!stop_) {
      tcp::socket s(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) return;
      ++connections_;
      connection_threads_.emplace_back([this, s = std::move(s)]() mutable { Serve(s); });
    }
  }

  void Serve(tcp::socket& s) {
    boost::system::error_code ec;
    {
      std::string buf;
      for (;;) {
        size_t head_end;
        while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
          char chunk[65536];
          size_t n = s.read_some(asio::buffer(chunk), ec);
          if (ec) break;
          buf.append(chunk, n);
        }
        if (ec) break;
        size_t length = 0;
        if (auto cl = buf.find("Content-Length: "); cl != std::string::npos && cl < head_end) {
          length = std::stoul(buf.substr(cl + 16));
        }
        while (buf.size() < head_end + 4 + length) {
          char chunk[65536];
          size_t n = s.read_some(asio::buffer(chunk), ec);
          if (ec) break;
          buf.append(chunk, n);
        }
        if (ec) break;
        {
          std::lock_guard<std::mutex> l(mu_);
          last_ = buf.substr(0, head_end + 4 + length);
        }
        buf.erase(0, head_end + 4 + length);
        std::string reply = answer_(requests_++);
        if (reply.empty()) {  // silent: hold the connection until the client gives up
          char byte;
          while (!ec) s.read_some(asio::buffer(&byte, 1), ec);
          break;
        }
        asio::write(s, asio::buffer(reply), ec);
        if (ec || reply.find("Connection: close") != std::string::npos) break;
      }
    }
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::function<std::string(int)> answer_;
  std::thread thread_;
  std::vector<std::thread> connection_threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::string last_;
};

std::string Ok(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\nX-Test: yes\r\n\r\n" + body;
}

HttpClientRequest Get(const std::string& url) {
  HttpClientRequest r;
  r.url = *ParseUrl(url);
  return r;
}

TEST(HttpClientTest, KeepsConnectionsAlivePerOrigin) {
  TinyServer server([](int n) { return Ok("answer " + std::to_string(n)); });
  HttpClient client;
  for (int i = 0; i < 3; ++i) {
    auto r = client.Send(Get(server.url() + "/x"));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "answer " + std::to_string(i));
    EXPECT_EQ(r->header("x-test"), "yes");
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_NE(server.last_request().find("Host: 127.0.0.1:"), std::string::npos);
  EXPECT_NE(server.last_request().find("User-Agent: berth"), std::string::npos);
}

TEST(HttpClientTest, AConnectionTheServerClosedIsRetriedFresh) {
  TinyServer server([](int n) {
    return "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n" + std::to_string(n % 10);
  });
  HttpClient client;
  for (int i = 0; i < 3; ++i) {
    auto r = client.Send(Get(server.url() + "/"));
    ASSERT_TRUE(r.ok()) << r.status().message();
  }
  EXPECT_EQ(server.connections(), 3);
}

TEST(HttpClientTest, ASilentServerCostsATimeoutNotAHang) {
  TinyServer server([](int) { return std::string(); });
  HttpClientOptions o;
  o.request_timeout = std::chrono::milliseconds(300);
  HttpClient client(o);
  auto t0 = std::chrono::steady_clock::now();
  auto r = client.Send(Get(server.url() + "/"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("reading the answer"), std::string::npos) << r.status().message();
}

TEST(HttpClientTest, NothingListeningNamesTheAddress) {
  HttpClient client;
  auto r = client.Send(Get("http://127.0.0.1:1/"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("127.0.0.1:1: connect failed"), std::string::npos) << r.status().message();
}

TEST(HttpClientTest, SendsStringAndFileBodies) {
  TinyServer server([](int) { return Ok("{}"); });
  HttpClient client;
  HttpClientRequest post = Get(server.url() + "/up");
  post.method = boost::beast::http::verb::put;
  post.body = "hello";
  post.headers["Content-Type"] = "text/plain";
  ASSERT_TRUE(client.Send(post).ok());
  EXPECT_NE(server.last_request().find("PUT /up HTTP/1.1"), std::string::npos);
  EXPECT_NE(server.last_request().find("\r\n\r\nhello"), std::string::npos);
  std::string file = testing::TempDir() + "/http_client_body";
  std::ofstream(file) << std::string(100000, 'z');
  post.body.clear();
  post.body_file = file;
  auto r = client.Send(post);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_NE(server.last_request().find("Content-Length: 100000"), std::string::npos);
  post.body_file = file + ".missing";
  EXPECT_EQ(client.Send(post).status().code(), StatusCode::kFailedPrecondition);
  std::remove(file.c_str());
}

TEST(HttpClientTest, ConcurrentSendsFromManyThreads) {
  TinyServer server([](int) { return Ok("x"); });
  HttpClient client;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) ok += client.Send(Get(server.url() + "/")).ok();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 40);
}

}  // namespace
}  // namespace berth
