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

std::shared_ptr<const ModelConfig> Config(size_t queue, const std::string& batching = "") {
  std::string yaml = R"(
backend: identity
max_batch_size: 4
inputs: [{name: x, datatype: FP32, shape: [1]}]
outputs: [{name: y, datatype: FP32, shape: [1]}]
)";
  auto c = ParseModelConfig(yaml + batching, "double", "model.yaml").value();
  c.max_queue_size = static_cast<int64_t>(queue);
  return std::make_shared<const ModelConfig>(std::move(c));
}

// A request of `rows` rows holding v, v+1, ...
std::unique_ptr<InferRequest> Request(float v, int64_t rows = 1) {
  auto r = std::make_unique<InferRequest>();
  Tensor t{"x", DataType::kFp32, {rows, 1}, std::vector<uint8_t>(4 * rows)};
  for (int64_t i = 0; i < rows; ++i) {
    float x = v + static_cast<float>(i);
    std::memcpy(t.data.data() + 4 * i, &x, 4);
  }
  r->inputs.push_back(std::move(t));
  r->batch_size = rows;
  return r;
}

std::vector<float> Values(const Tensor& t) {
  std::vector<float> v(t.data.size() / 4);
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

struct Pool {
  std::shared_ptr<ModelMetrics> metrics = std::make_shared<ModelMetrics>();
  std::atomic<int> running{0};
  std::promise<void> release;
  std::unique_ptr<InstancePool> pool;

  Pool(int instances, size_t queue, const std::string& batching = "") {
    std::shared_future<void> gate = release.get_future().share();
    InstancePool::Options o;
    o.config = Config(queue, batching);
    o.version = 1;
    o.metrics = metrics;
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

TEST(DynamicBatchingTest, MergesRequestsAndSplitsRowsBackExactly) {
  Pool p(1, 64, "dynamic_batching: {max_queue_delay_us: 200000}\n");
  std::vector<std::future<Result<InferResponse>>> futures;
  const int64_t sizes[] = {1, 2, 1};  // 4 rows = max_batch_size: runs as soon as all are queued
  float base = 0;
  for (int64_t rows : sizes) {
    auto promise = std::make_shared<std::promise<Result<InferResponse>>>();
    futures.push_back(promise->get_future());
    p.pool->Enqueue(Request(base, rows), [promise](Result<InferResponse> r) { promise->set_value(std::move(r)); });
    base += 10;
  }
  p.release.set_value();
  base = 0;
  for (size_t i = 0; i < 3; ++i) {
    auto r = futures[i].get();
    ASSERT_TRUE(r.ok()) << r.status().message();
    std::vector<float> want;
    for (int64_t k = 0; k < sizes[i]; ++k) want.push_back(2 * (base + static_cast<float>(k)));
    EXPECT_EQ(Values(r->outputs[0]), want) << "request " << i;
    EXPECT_EQ(r->outputs[0].shape, (std::vector<int64_t>{sizes[i], 1}));
    base += 10;
  }
  EXPECT_EQ(p.metrics->execution_count.load(), 1u);  // one execution for all three
  EXPECT_EQ(p.metrics->inference_count.load(), 4u);
}

TEST(DynamicBatchingTest, DelayBoundsTheWaitForCompany) {
  Pool p(1, 64, "dynamic_batching: {max_queue_delay_us: 20000}\n");
  p.release.set_value();
  auto start = std::chrono::steady_clock::now();
  std::promise<Result<InferResponse>> done;
  p.pool->Enqueue(Request(1), [&](Result<InferResponse> r) { done.set_value(std::move(r)); });
  ASSERT_TRUE(done.get_future().get().ok());
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(15));  // it waited for company...
  EXPECT_LT(waited, std::chrono::seconds(2));        // ...but not much longer than the delay
}

TEST(DynamicBatchingTest, PreferredBatchSizeRunsWithoutWaiting) {
  Pool p(1, 64, "dynamic_batching: {max_queue_delay_us: 5000000, preferred_batch_sizes: [2]}\n");
  p.release.set_value();
  std::promise<void> both;
  std::atomic<int> n{0};
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 2; ++i) {
    p.pool->Enqueue(Request(1), [&](Result<InferResponse> r) {
      EXPECT_TRUE(r.ok());
      if (++n == 2) both.set_value();
    });
  }
  both.get_future().get();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));  // not the 5 s delay
}

TEST(DynamicBatchingTest, FailedBatchAnswersEveryRequestWithTheError) {
  Pool p(1, 64, "dynamic_batching: {max_queue_delay_us: 200000}\n");
  std::vector<std::future<Result<InferResponse>>> futures;
  for (float v : {-5.0f, 1.0f}) {  // the instance fails a batch whose first value is negative
    auto promise = std::make_shared<std::promise<Result<InferResponse>>>();
    futures.push_back(promise->get_future());
    p.pool->Enqueue(Request(v, 2), [promise](Result<InferResponse> r) { promise->set_value(std::move(r)); });
  }
  p.release.set_value();
  for (auto& f : futures) {
    auto r = f.get();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("negative"), std::string::npos);
  }
}

TEST(InstancePoolTest, ExpiredRequestsAreDroppedWithAClearError) {
  Pool p(1, 64);
  std::promise<Result<InferResponse>> first, late;
  p.pool->Enqueue(Request(1), [&](Result<InferResponse> r) { first.set_value(std::move(r)); });
  auto req = Request(2);
  req->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
  p.pool->Enqueue(std::move(req), [&](Result<InferResponse> r) { late.set_value(std::move(r)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the instance is busy past the deadline
  p.release.set_value();
  EXPECT_TRUE(first.get_future().get().ok());
  auto r = late.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("past its timeout"), std::string::npos);
}

// The watchdog sleeps until the earliest deadline it knows (at most a second) and is woken only for
// an earlier one: a request with a short deadline, queued after one with a long deadline, is answered
// 504 at its own deadline while the instance is still busy, not when the watchdog would have woken.
TEST(InstancePoolTest, ASoonerDeadlineWakesTheWatchdogWhileTheInstanceIsBusy) {
  Pool p(1, 64);
  std::promise<Result<InferResponse>> busy, later, sooner;
  p.pool->Enqueue(Request(1), [&](Result<InferResponse> r) { busy.set_value(std::move(r)); });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (p.running.load() < 1 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  auto long_deadline = Request(2);
  long_deadline->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  p.pool->Enqueue(std::move(long_deadline), [&](Result<InferResponse> r) { later.set_value(std::move(r)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the watchdog now sleeps for up to a second
  auto start = std::chrono::steady_clock::now();
  auto short_deadline = Request(3);
  short_deadline->deadline = start + std::chrono::milliseconds(30);
  p.pool->Enqueue(std::move(short_deadline), [&](Result<InferResponse> r) { sooner.set_value(std::move(r)); });
  auto answer = sooner.get_future();
  bool in_time = answer.wait_for(std::chrono::milliseconds(600)) == std::future_status::ready;
  auto waited = std::chrono::steady_clock::now() - start;
  p.release.set_value();  // (before any assertion: the pool's destructor waits for the busy instance)
  EXPECT_TRUE(in_time) << "the sooner deadline was not enforced while the instance was busy";
  auto r = answer.get();
  if (in_time) {
    EXPECT_GE(waited, std::chrono::milliseconds(30));
  }
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(busy.get_future().get().ok());
  EXPECT_TRUE(later.get_future().get().ok());
}

// Doubles its FP32 input after sleeping *delay_us; counts calls that overlap
// (one instance must never run two requests at once).
class TimedInstance final : public ModelInstance {
 public:
  TimedInstance(const std::atomic<int64_t>* delay_us, std::atomic<int>* overlaps, std::atomic<int>* calls)
      : delay_us_(delay_us), overlaps_(overlaps), calls_(calls) {}
  Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) override {
    if (inside_.fetch_add(1) != 0) overlaps_->fetch_add(1);
    calls_->fetch_add(1);
    if (int64_t d = delay_us_->load(); d > 0) std::this_thread::sleep_for(std::chrono::microseconds(d));
    Tensor out = inputs[0];
    float* p = reinterpret_cast<float*>(out.data.data());
    for (size_t i = 0; i < out.data.size() / 4; ++i) p[i] *= 2;
    outputs->push_back(std::move(out));
    inside_.fetch_sub(1);
    return Status::Ok();
  }

 private:
  const std::atomic<int64_t>* delay_us_;
  std::atomic<int>* overlaps_;
  std::atomic<int>* calls_;
  std::atomic<int> inside_{0};
};

struct TimedPool {
  std::atomic<int64_t> delay_us{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> calls{0};
  std::unique_ptr<InstancePool> pool;

  TimedPool(int instances, int64_t delay, int64_t inline_max_us, const std::string& batching = "") {
    delay_us = delay;
    InstancePool::Options o;
    o.config = Config(1024, batching);
    o.version = 1;
    o.inline_max_us = inline_max_us;
    for (int i = 0; i < instances; ++i)
      o.instances.push_back(std::make_unique<TimedInstance>(&delay_us, &overlaps, &calls));
    pool = InstancePool::Create(std::move(o)).value();
  }

  // Sends one request and returns the thread its answer came on; checks the answer.
  std::thread::id Run(float v, bool may_run_here) {
    std::promise<std::thread::id> on;
    pool->Enqueue(
        Request(v),
        [&](Result<InferResponse> r) {
          EXPECT_TRUE(r.ok()) << r.status().message();
          if (r.ok()) {
            EXPECT_EQ(Values(r->outputs[0]), std::vector<float>{2 * v});
          }
          on.set_value(std::this_thread::get_id());
        },
        may_run_here);
    return on.get_future().get();
  }

  // Runs `n` requests through the queue, so that the pool has measured the model.
  void Measure(int n) {
    for (int i = 0; i < n; ++i) Run(static_cast<float>(i), false);
  }
};

TEST(InlineExecutionTest, FastModelRunsOnTheCallersThreadOnceMeasured) {
  TimedPool p(1, 0, 100000);
  const auto me = std::this_thread::get_id();
  EXPECT_NE(p.Run(1, true), me);  // not measured yet: queued
  p.Measure(8);
  // Measured fast: runs here once the instance is idle (its executor may
  // still be finishing the previous request for a moment).
  bool ran_here = false;
  for (int i = 0; i < 1000 && !ran_here; ++i) ran_here = p.Run(2, true) == me;
  EXPECT_TRUE(ran_here);
  EXPECT_NE(p.Run(3, false), me);  // the caller did not allow it
  EXPECT_EQ(p.overlaps.load(), 0);
}

TEST(InlineExecutionTest, SlowModelStaysOnTheExecutor) {
  TimedPool p(1, 3000, 1000);  // 3 ms per execution, inline bound 1 ms
  p.Measure(6);
  EXPECT_NE(p.Run(1, true), std::this_thread::get_id());
}

TEST(InlineExecutionTest, OffWhenTheBoundIsZeroOrWithDynamicBatching) {
  TimedPool off(1, 0, 0);
  off.Measure(8);
  EXPECT_NE(off.Run(1, true), std::this_thread::get_id());
  TimedPool batched(1, 0, 100000, "dynamic_batching: {max_queue_delay_us: 100}\n");
  batched.Measure(8);
  EXPECT_NE(batched.Run(1, true), std::this_thread::get_id());
}

TEST(InlineExecutionTest, ConcurrentCallersNeverShareAnInstanceAndEachGetsItsOwnAnswer) {
  TimedPool p(2, 0, 100000);
  p.Measure(8);
  std::atomic<int> inline_runs{0}, queued_runs{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        bool here = i % 4 != 0;  // mix callers that allow inline execution with ones that do not
        if (p.Run(static_cast<float>(t * 10000 + i), here) == std::this_thread::get_id()) {
          inline_runs.fetch_add(1);
        } else {
          queued_runs.fetch_add(1);
        }
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(p.overlaps.load(), 0);
  EXPECT_EQ(inline_runs.load() + queued_runs.load(), 4000);
  EXPECT_GT(inline_runs.load(), 0);
  EXPECT_GE(queued_runs.load(), 1000);
}

TEST(InlineExecutionTest, StopWaitsForARequestRunningInline) {
  TimedPool p(1, 0, 100000);
  p.Measure(8);
  p.delay_us = 50000;  // the next execution takes 50 ms, though the pool still thinks it is fast
  std::atomic<bool> answered{false};
  std::thread caller([&] {
    p.pool->Enqueue(
        Request(1), [&](Result<InferResponse> r) { answered = r.ok(); }, true);
  });
  while (p.calls.load() < 9) std::this_thread::yield();  // the inline execution has begun
  p.pool->Stop();
  EXPECT_TRUE(answered.load());  // Stop returned only after the loaned instance came back
  caller.join();
}

}  // namespace
}  // namespace berth
