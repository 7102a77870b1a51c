#include "metrics/model_metrics.h"

#include <algorithm>

namespace berth {

Histogram::Histogram(std::vector<uint64_t> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(uint64_t value) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

void Histogram::Reset() {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
  count_.store(0, std::memory_order_relaxed);
  sum_.store(0, std::memory_order_relaxed);
}

void ModelMetrics::ResetExecutions() {
  inference_count.store(0, std::memory_order_relaxed);
  execution_count.store(0, std::memory_order_relaxed);
  queue_us.store(0, std::memory_order_relaxed);
  compute_us.store(0, std::memory_order_relaxed);
  batch_size.Reset();
  for (size_t i = 0; i < kExactBatchSizes; ++i) {
    executions_by_size[i].store(0, std::memory_order_relaxed);
    compute_us_by_size[i].store(0, std::memory_order_relaxed);
  }
  for (auto& step : steps) {
    for (auto* c : {&step->ok, &step->skipped, &step->error, &step->timeout}) c->store(0, std::memory_order_relaxed);
    step->duration_us.Reset();
  }
}

namespace {
std::vector<uint64_t> DurationBoundsUs() {
  return {100,   250,    500,    1000,   2500,    5000,    10000,   25000,
          50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
}
}  // namespace

StepMetrics::StepMetrics() : duration_us(DurationBoundsUs()) {}

ModelMetrics::ModelMetrics()
    : request_duration_us(DurationBoundsUs()), batch_size({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}) {}

}  // namespace berth
