// InstancePool: a bounded FIFO queue served by one thread per model instance.
// Each request executes alone on the next free instance.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "berth/backend_api.h"
#include "scheduler/scheduler.h"

namespace berth {

class InstancePool final : public Scheduler {
 public:
  struct Options {
    std::shared_ptr<const ModelConfig> config;
    int64_t version = 0;
    std::vector<std::unique_ptr<ModelInstance>> instances;  // one executor thread each
    size_t max_queue_size = 1024;
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
  };

  explicit InstancePool(Options options);
  void RunExecutor(ModelInstance* instance);

  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;   // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

// Runs one request on `instance`: execute, check outputs, build the response.
// Shared by every scheduler.
Result<InferResponse> ExecuteRequest(ModelInstance& instance, const ModelConfig& config, int64_t version,
                                     InferRequest& request);

}  // namespace berth
