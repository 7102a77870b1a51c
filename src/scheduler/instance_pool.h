// InstancePool: the scheduler of one model version. A bounded FIFO queue is
// served by one executor thread per model instance. Without dynamic batching
// each request executes alone on the next free instance; with it, an executor
// gathers queued requests (Triton semantics) up to max_batch_size rows, a
// preferred batch size, or until the oldest has waited max_queue_delay_us,
// runs them as one batch and splits the results back.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "berth/backend_api.h"
#include "metrics/model_metrics.h"
#include "scheduler/scheduler.h"

namespace berth {

class InstancePool final : public Scheduler {
 public:
  struct Options {
    std::shared_ptr<const ModelConfig> config;  // dynamic_batching, max_queue_size come from here
    int64_t version = 0;
    std::vector<std::unique_ptr<ModelInstance>> instances;  // one executor thread each
    std::shared_ptr<ModelMetrics> metrics;                  // optional
  };

  // Starts one executor thread per instance.
  static Result<std::unique_ptr<InstancePool>> Create(Options options);
  ~InstancePool() override;

  void Enqueue(std::unique_ptr<InferRequest> request, InferCompletion done) override;
  void Stop() override;

 private:
  struct Item {
    std::unique_ptr<InferRequest> request;
    InferCompletion done;
    std::chrono::steady_clock::time_point enqueued;
  };

  explicit InstancePool(Options options);
  void RunExecutor(ModelInstance* instance);
  // Takes the next batch off the queue, waiting for company as configured.
  // Empty when stopping with nothing left. Fills `expired` with requests
  // whose deadline passed while queued.
  std::vector<Item> NextBatch(std::unique_lock<std::mutex>& lock, std::vector<Item>* expired);
  // Rows of queued requests, from the front, that could run as one batch.
  int64_t GatherableRows(size_t* count) const;
  void RunBatch(ModelInstance& instance, std::vector<Item>& batch);
  void RunBatchUnguarded(ModelInstance& instance, std::vector<Item>& batch);
  void Finish(Item& item, Result<InferResponse> result, int64_t queue_us, int64_t compute_us);

  Options options_;
  const ModelConfig& config_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;   // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

// Runs one request on `instance`: execute, check outputs, build the response.
Result<InferResponse> ExecuteRequest(ModelInstance& instance, const ModelConfig& config, int64_t version,
                                     InferRequest& request);

}  // namespace berth
