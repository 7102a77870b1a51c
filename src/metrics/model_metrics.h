// Counters and histograms for one model version, updated lock-free on the
// request path and read by the Prometheus exposition.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace berth {

// A fixed-bucket histogram of non-negative integer observations.
class Histogram {
 public:
  // `bounds`: ascending upper bounds (inclusive), in the unit of Observe().
  explicit Histogram(std::vector<uint64_t> bounds);

  void Observe(uint64_t value);
  // Back to zero (not atomic as a whole: for when nothing observes).
  void Reset();

  const std::vector<uint64_t>& bounds() const { return bounds_; }
  // Non-cumulative count of bucket i; bucket bounds().size() is +Inf.
  uint64_t bucket(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<uint64_t> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
};

// A pipeline step's counts by outcome and its durations (network time
// included for a remote step).
struct StepMetrics {
  StepMetrics();
  std::string name;
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> skipped{0};  // a condition that did not hold, an absent input, on_error: skip
  std::atomic<uint64_t> error{0};
  std::atomic<uint64_t> timeout{0};  // no answer by the deadline
  Histogram duration_us;             // of the steps that ran (ok, error, timeout)
};

struct ModelMetrics {
  ModelMetrics();

  // Executions by exact batch size (Triton's batch_stats): sizes 1 ..
  // kExactBatchSizes, larger ones counted in the last slot.
  static constexpr size_t kExactBatchSizes = 64;

  // Forgets the executions so far (the warm-up's, before a version serves):
  // the statistics count what clients sent.
  void ResetExecutions();
  void ObserveExecution(int64_t rows, int64_t compute_us) {
    size_t i = static_cast<size_t>(std::min<int64_t>(std::max<int64_t>(rows, 1), kExactBatchSizes)) - 1;
    executions_by_size[i].fetch_add(1, std::memory_order_relaxed);
    compute_us_by_size[i].fetch_add(static_cast<uint64_t>(compute_us), std::memory_order_relaxed);
  }

  std::atomic<uint64_t> request_success{0};
  std::atomic<uint64_t> request_failure{0};
  std::atomic<uint64_t> success_us{0};        // summed durations of successful requests
  std::atomic<uint64_t> failure_us{0};        // and of failed ones
  std::atomic<int64_t> last_inference_ms{0};  // wall clock (ms since the epoch) of the last request answered
  std::atomic<uint64_t> inference_count{0};   // rows inferred
  std::atomic<uint64_t> execution_count{0};   // backend executions (batches)
  std::atomic<uint64_t> queue_us{0};          // summed over requests
  std::atomic<uint64_t> compute_us{0};        // summed over requests
  std::atomic<int64_t> queue_depth{0};        // requests waiting now
  std::atomic<int64_t> stuck_instances{0};    // instances executing past their execution timeout now
  Histogram request_duration_us;              // from body received to response ready
  Histogram batch_size;                       // rows per execution
  std::atomic<uint64_t> executions_by_size[kExactBatchSizes]{};
  std::atomic<uint64_t> compute_us_by_size[kExactBatchSizes]{};
  // Pipelines: one per step, set up before the version serves (fixed after).
  std::vector<std::unique_ptr<StepMetrics>> steps;
};

// One model version's metrics, as a snapshot of what serves now: the
// counters keep counting after it is taken (they are shared, not copied).
struct VersionMetrics {
  std::string model;
  int64_t version = 0;
  std::shared_ptr<const ModelMetrics> metrics;
};

}  // namespace berth
