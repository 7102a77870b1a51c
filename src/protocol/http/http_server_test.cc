#include "protocol/http/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/http_client.h"
#include "net/url.h"

namespace berth {
namespace {

namespace http = boost::beast::http;

// A server on 127.0.0.1, any free port, with `loops` event loops.
HttpServer::Options Loopback(int loops) {
  HttpServer::Options o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.threads = loops;
  return o;
}

Result<HttpClientResponse> Get(HttpClient& client, const std::string& url) {
  HttpClientRequest r;
  r.url = *ParseUrl(url);
  return client.Send(std::move(r));
}

// Echoes the request target. Every other request is answered from a worker
// thread, as a request that went to a model executor is: the response is
// posted back to the connection's event loop from outside it.
class EchoHandler final : public HttpHandler {
 public:
  EchoHandler() : worker_([this] { Work(); }) {}
  ~EchoHandler() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    worker_.join();
  }

  void Handle(HttpRequest&& request, Responder respond) override {
    HttpResponse res{http::status::ok, request.version()};
    res.body() = std::string(request.target());
    res.keep_alive(request.keep_alive());
    res.prepare_payload();
    if (count_.fetch_add(1) % 2 == 0) return respond(std::move(res));  // on the event loop
    std::lock_guard<std::mutex> lock(mu_);
    queue_.emplace_back([res = std::move(res), respond = std::move(respond)]() mutable { respond(std::move(res)); });
    cv_.notify_one();
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::atomic<int> count_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread worker_;
};

// Several event loops, many kept-alive connections, answers from the loops
// and from another thread: every request gets its own answer (the
// ThreadSanitizer build runs this too).
TEST(HttpServerTest, EventLoopsAnswerEveryRequestOnEveryConnection) {
  EchoHandler handler;
  auto server = HttpServer::Create(Loopback(3), &handler);
  ASSERT_TRUE(server.ok()) << server.status().message();
  ASSERT_TRUE((*server)->Start().ok());
  const std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 6; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client;  // its own connections
      for (int i = 0; i < 40; ++i) {
        const std::string target = "/c" + std::to_string(c) + "/" + std::to_string(i);
        auto answer = Get(client, base + target);
        ok += answer.ok() && answer->status == 200 && answer->body == target;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 6 * 40);
  (*server)->Stop();
}

// Answers "/probe" with what InFlightOnThisLoop() says on the loop, and
// holds "/hold" unanswered until Release().
class ProbeHandler final : public HttpHandler {
 public:
  void Handle(HttpRequest&& request, Responder respond) override {
    if (request.target() == "/hold") {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = std::move(respond);
      version_ = request.version();
      return;
    }
    HttpResponse res{http::status::ok, request.version()};
    res.body() = std::to_string(server->InFlightOnThisLoop());
    res.prepare_payload();
    respond(std::move(res));
  }
  bool Holding() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_ != nullptr;
  }
  // Answers the held request and drops its responder (which keeps the
  // connection alive): a responder must not outlive the server.
  void Release() {
    Responder respond;
    unsigned version = 11;
    {
      std::lock_guard<std::mutex> lock(mu_);
      respond.swap(held_);
      version = version_;
    }
    HttpResponse res{http::status::ok, version};
    res.prepare_payload();
    respond(std::move(res));
  }
  HttpServer* server = nullptr;

 private:
  std::mutex mu_;
  Responder held_;
  unsigned version_ = 11;
};

// What decides whether a request may run inline on its loop: the requests of
// that loop in flight, this one included; -1 off the server's loops.
TEST(HttpServerTest, InFlightOnThisLoopCountsTheLoopsUnansweredRequests) {
  ProbeHandler handler;
  auto server = HttpServer::Create(Loopback(1), &handler);
  ASSERT_TRUE(server.ok()) << server.status().message();
  handler.server = server->get();
  ASSERT_TRUE((*server)->Start().ok());
  EXPECT_EQ((*server)->InFlightOnThisLoop(), -1);  // the test's thread is no loop
  const std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());
  HttpClient probe, holder;
  auto alone = Get(probe, base + "/probe");
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(alone->body, "1");
  std::thread hold([&] { EXPECT_TRUE(Get(holder, base + "/hold").ok()); });
  for (int i = 0; i < 500 && !handler.Holding(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(handler.Holding());
  auto beside = Get(probe, base + "/probe");
  ASSERT_TRUE(beside.ok());
  EXPECT_EQ(beside->body, "2");  // the held request is still in flight on the same loop
  handler.Release();
  hold.join();
  (*server)->Stop();
}

}  // namespace
}  // namespace berth
