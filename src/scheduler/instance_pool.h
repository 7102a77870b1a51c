// InstancePool: the scheduler of one model version. A bounded FIFO queue is
// served by one executor thread per model instance. Without dynamic batching
// each request executes alone on the next free instance; with it, an executor
// gathers queued requests (Triton semantics) up to max_batch_size rows, a
// preferred batch size, or until the oldest has waited max_queue_delay_us,
// runs them as one batch and splits the results back.
//
// Inline execution: a two-thread hand-off (I/O thread -> executor -> I/O
// thread) costs tens of microseconds of wake-ups, more than a small model's
// whole forward pass. So when the caller allows it, the queue is empty, an
// instance is idle, the model has no dynamic batching, and its measured
// execution time (scaled to the request's rows) is within `inline_max_us`,
// the caller borrows that instance and runs the request on its own thread.
// A slow model is never run inline, so it cannot stall an I/O thread for
// longer than that bound.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "berth/backend_api.h"
#include "common/model_config.h"
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
    int64_t inline_max_us = 0;                              // 0 = never run on the caller's thread
    // An execution that runs longer fails its requests with 504 at once; the
    // instance is reported stuck until the backend returns. 0 = no limit.
    int64_t execution_timeout_ms = 0;
  };

  // Starts one executor thread per instance.
  static Result<std::unique_ptr<InstancePool>> Create(Options options);
  ~InstancePool() override;

  void Enqueue(std::unique_ptr<InferRequest> request, InferCompletion done, bool may_run_here = false) override;
  void Stop() override;

 private:
  struct Item {
    std::unique_ptr<InferRequest> request;
    InferCompletion done;
    std::chrono::steady_clock::time_point enqueued;
  };

  // Per instance, GUARDED_BY(mu_).
  struct Slot {
    bool busy = false;  // its executor is running a batch
    bool lent = false;  // a caller runs a request on it inline
    // While a batch executes: its requests (the watchdog may answer them
    // when the execution passes its limit) and when it must end.
    std::vector<Item>* running = nullptr;
    std::chrono::steady_clock::time_point must_end;
    bool timed_out = false;  // the watchdog answered `running`
  };

  explicit InstancePool(Options options);
  void RunExecutor(size_t index);
  // Takes the next batch off the queue, waiting for company as configured.
  // Empty when stopping with nothing left. Fills `expired` with requests
  // whose deadline passed while queued. The executor of `index` waits while
  // its instance is lent.
  std::vector<Item> NextBatch(std::unique_lock<std::mutex>& lock, size_t index, std::vector<Item>* expired);
  // Whether any instance is lent now. Needs mu_.
  bool AnyLent() const;
  // Whether a request of `rows` rows is expected to run within inline_max_us.
  bool FastEnough(int64_t rows) const;
  // Records one execution for FastEnough.
  void Observe(int64_t rows, double micros);
  // Rows of queued requests, from the front, that could run as one batch.
  int64_t GatherableRows(size_t* count) const;
  void RunBatch(size_t slot, std::vector<Item>& batch);
  void RunBatchUnguarded(size_t slot, std::vector<Item>& batch);
  // Registers `batch` as executing on `slot` (for the watchdog).
  void BeginExecution(size_t slot, std::vector<Item>& batch);
  // After the backend returned: false when the watchdog already answered
  // the batch (past its limit), so its results are dropped.
  bool EndExecution(size_t slot);
  // Answers queued requests whose deadline passed, and fails executions past
  // their limit, on time (not when an executor frees up).
  void Watchdog();
  void Finish(Item& item, Result<InferResponse> result, int64_t queue_us, int64_t compute_us);

  Options options_;
  const ModelConfig& config_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;   // GUARDED_BY(mu_)
  bool stopping_ = false;    // GUARDED_BY(mu_)
  std::vector<Slot> slots_;  // GUARDED_BY(mu_)
  // Averages of recent successful executions, for FastEnough (a lock of
  // their own: Observe runs outside mu_).
  mutable std::mutex stats_mu_;
  double avg_us_ = 0;     // GUARDED_BY(stats_mu_)
  double avg_rows_ = 0;   // GUARDED_BY(stats_mu_)
  int64_t observed_ = 0;  // GUARDED_BY(stats_mu_)
  std::vector<std::thread> threads_;
  std::condition_variable watch_cv_;  // wakes the watchdog: a deadline before its next wake-up, or stopping
  // When the waiting watchdog wakes up by itself; a deadline after it needs no
  // notification (each one would cost a wake-up and a scan of the queue).
  std::chrono::steady_clock::time_point watch_next_ = std::chrono::steady_clock::time_point::min();  // GUARDED_BY(mu_)
  std::thread watchdog_;
};

// Runs one request on `instance`: execute, check outputs, build the response.
Result<InferResponse> ExecuteRequest(ModelInstance& instance, const ModelConfig& config, int64_t version,
                                     InferRequest& request);

}  // namespace berth
