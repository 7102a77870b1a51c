#include "scheduler/instance_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <set>
#include <thread>

namespace berth {
namespace {

// Doubles its FP32 input; records which threads ran it; can block until released.
class DoublingInstance final : public ModelInstance {
 public:
  explicit DoublingInstance(std::atomic<int>* running, std::shared_future<void> gate)
      : running_(running), gate_(std::move(gate)) {}
  Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) override {
    running_->fetch_add(1);
    gate_.wait();
    Tensor out = inputs[0];
    float* p = reinterpret_cast<float*>(out.data.data());
    for (size_t i = 0; i < out.data.size() / 4; ++i) p[i] *= 2;
    outputs->push_back(std::move(out));
    running_->fetch_sub(1);
    if (p[0] < 0) return Internal("negative");
    return Status::Ok();
  }

 private:
  std::atomic<int>* running_;
  std::shared_future<void> gate_;
};

std::shared_ptr<const ModelConfig> Config() {
  return std::make_shared<const ModelConfig>(ParseModelConfig(R"(
backend: identity
max_batch_size: 4
inputs: [{name: x, datatype: FP32, shape: [1]}]
outputs: [{name: y, datatype: FP32, shape: [1]}]
)",
                                                              "double", "model.yaml")
                                                 .value());
}

std::unique_ptr<InferRequest> Request(float v) {
  auto r = std::make_unique<InferRequest>();
  Tensor t{"x", DataType::kFp32, {1, 1}, std::vector<uint8_t>(4)};
  std::memcpy(t.data.data(), &v, 4);
  r->inputs.push_back(std::move(t));
  r->batch_size = 1;
  return r;
}

struct Pool {
  std::atomic<int> running{0};
  std::promise<void> release;
  std::unique_ptr<InstancePool> pool;

  Pool(int instances, size_t queue) {
    std::shared_future<void> gate = release.get_future().share();
    InstancePool::Options o;
    o.config = Config();
    o.version = 1;
    o.max_queue_size = queue;
    for (int i = 0; i < instances; ++i) o.instances.push_back(std::make_unique<DoublingInstance>(&running, gate));
    pool = InstancePool::Create(std::move(o)).value();
  }
};

TEST(InstancePoolTest, EveryRequestGetsItsOwnAnswer) {
  Pool p(2, 1024);
  p.release.set_value();
  std::vector<std::future<Result<InferResponse>>> futures;
  for (int i = 0; i < 200; ++i) {
    auto promise = std::make_shared<std::promise<Result<InferResponse>>>();
    futures.push_back(promise->get_future());
    p.pool->Enqueue(Request(static_cast<float>(i)),
                    [promise](Result<InferResponse> r) { promise->set_value(std::move(r)); });
  }
  for (int i = 0; i < 200; ++i) {
    auto r = futures[i].get();
    ASSERT_TRUE(r.ok()) << r.status().message();
    float v;
    std::memcpy(&v, r->outputs[0].data.data(), 4);
    EXPECT_EQ(v, 2.0f * i);
    EXPECT_EQ(r->outputs[0].name, "y");
  }
}

TEST(InstancePoolTest, InstancesRunInParallelAndFullQueueRefusesAtOnce) {
  Pool p(2, 2);
  std::atomic<int> done{0};
  std::vector<Status> refused;
  std::mutex mu;
  auto cb = [&](Result<InferResponse> r) {
    if (!r.ok()) {
      std::lock_guard<std::mutex> l(mu);
      refused.push_back(r.status());
    }
    done.fetch_add(1);
  };
  for (int i = 0; i < 2; ++i) p.pool->Enqueue(Request(1), cb);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (p.running.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(p.running.load(), 2);                               // both instances busy at once
  for (int i = 0; i < 2; ++i) p.pool->Enqueue(Request(1), cb);  // fill the queue
  p.pool->Enqueue(Request(1), cb);                              // one too many
  {
    std::lock_guard<std::mutex> l(mu);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].code(), StatusCode::kResourceExhausted);
  }
  p.release.set_value();
  p.pool->Stop();
  EXPECT_EQ(done.load(), 5);
}

TEST(InstancePoolTest, BackendErrorsAndBadOutputsReachOnlyTheirRequest) {
  Pool p(1, 16);
  p.release.set_value();
  std::promise<Result<InferResponse>> bad, good;
  p.pool->Enqueue(Request(-1), [&](Result<InferResponse> r) { bad.set_value(std::move(r)); });
  p.pool->Enqueue(Request(3), [&](Result<InferResponse> r) { good.set_value(std::move(r)); });
  auto b = bad.get_future().get();
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kInternal);
  EXPECT_NE(b.status().message().find("negative"), std::string::npos);
  EXPECT_TRUE(good.get_future().get().ok());
}

TEST(InstancePoolTest, StopFinishesQueuedWorkThenRefuses) {
  Pool p(1, 16);
  std::atomic<int> ok{0};
  for (int i = 0; i < 5; ++i) {
    p.pool->Enqueue(Request(1), [&](Result<InferResponse> r) { ok += r.ok(); });
  }
  p.release.set_value();
  p.pool->Stop();
  EXPECT_EQ(ok.load(), 5);
  Status after;
  p.pool->Enqueue(Request(1), [&](Result<InferResponse> r) { after = r.status(); });
  EXPECT_EQ(after.code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace berth
