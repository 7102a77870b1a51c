#include "scheduler/instance_pool.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "request/validate.h"
#include "scheduler/batch.h"

namespace berth {
namespace {

using Clock = std::chrono::steady_clock;

int64_t MicrosBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
}

Status WithModel(const ModelConfig& config, int64_t version, const Status& s) {
  return Status(s.code(), "model '" + config.name + "' version " + std::to_string(version) + ": " + s.message());
}

}  // namespace

Result<InferResponse> ExecuteRequest(ModelInstance& instance, const ModelConfig& config, int64_t version,
                                     InferRequest& request) {
  std::vector<Tensor> outputs;
  Status s = instance.Execute(request.inputs, &outputs);
  if (!s.ok()) return WithModel(config, version, s);  // the backend's message is passed on
  RETURN_IF_ERROR(ValidateOutputs(config, request.batch_size, outputs));
  return MakeResponse(config, version, request, std::move(outputs));
}

Result<std::unique_ptr<InstancePool>> InstancePool::Create(Options options) {
  if (!options.config) return InvalidArgument("InstancePool needs a config");
  if (options.instances.empty()) return InvalidArgument("InstancePool needs at least one instance");
  if (!options.metrics) options.metrics = std::make_shared<ModelMetrics>();
  std::unique_ptr<InstancePool> pool(new InstancePool(std::move(options)));
  pool->slots_.resize(pool->options_.instances.size());
  for (size_t i = 0; i < pool->options_.instances.size(); ++i) {
    pool->threads_.emplace_back([p = pool.get(), i] { p->RunExecutor(i); });
  }
  pool->watchdog_ = std::thread([p = pool.get()] { p->Watchdog(); });
  return pool;
}

InstancePool::InstancePool(Options options) : options_(std::move(options)), config_(*options_.config) {}

InstancePool::~InstancePool() { Stop(); }

void InstancePool::Enqueue(std::unique_ptr<InferRequest> request, InferCompletion done, bool may_run_here) {
  constexpr size_t kNone = static_cast<size_t>(-1);
  Status refused;
  size_t borrowed = kNone;
  bool wake_all = false;
  std::vector<Item> batch;  // the inline batch; allocated before anything is lent
  if (may_run_here) batch.reserve(1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (may_run_here && !stopping_ && queue_.empty() && !config_.dynamic_batching && FastEnough(request->batch_size)) {
      for (size_t i = 0; i < slots_.size(); ++i) {
        if (!slots_[i].busy && !slots_[i].lent) {
          slots_[i].lent = true;
          borrowed = i;
          break;
        }
      }
    }
    if (borrowed != kNone) {
      // runs below, outside the lock
    } else if (stopping_) {
      refused = Unavailable("model '" + config_.name + "' is shutting down");
    } else if (queue_.size() >= static_cast<size_t>(config_.max_queue_size)) {
      refused = ResourceExhausted("model '" + config_.name + "': queue is full (" +
                                  std::to_string(config_.max_queue_size) + " requests waiting); retry later");
    } else {
      bool sooner = request->deadline < watch_next_;
      queue_.push_back(Item{std::move(request), std::move(done), Clock::now()});
      options_.metrics->queue_depth.fetch_add(1, std::memory_order_relaxed);
      wake_all = AnyLent();  // notify_one might wake only the executor of a lent instance
      if (sooner) watch_cv_.notify_one();
    }
  }
  if (!refused.ok()) return done(refused);
  if (borrowed == kNone) {
    if (wake_all) {
      cv_.notify_all();
    } else {
      cv_.notify_one();
    }
    return;
  }
  // The loan ends however RunBatch ends (it catches std::exception, but its own error path can throw
  // bad_alloc): a loan never returned would stall that instance's executor and Stop() for good.
  struct Return {
    InstancePool* pool;
    size_t slot;
    ~Return() {
      std::lock_guard<std::mutex> lock(pool->mu_);
      pool->slots_[slot].lent = false;
      // Under the lock: once Stop() sees no loan the pool may be destroyed, cv_ with it. Its executor may
      // have work waiting, or Stop() may wait for the loan; waking the idle executors when neither holds is
      // deliberate too: measured on the 2-vCPU build VM, skipping it made one connection up to ~40% slower
      // (the wake-up keeps the second vCPU from idling deeply; bench/results/2026-12-01-profile.md).
      pool->cv_.notify_all();
    }
  } give_back{this, borrowed};
  batch.push_back(Item{std::move(request), std::move(done), Clock::now()});
  RunBatch(borrowed, batch);
}

bool InstancePool::AnyLent() const {
  return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.lent; });
}

bool InstancePool::FastEnough(int64_t rows) const {
  if (options_.inline_max_us <= 0) return false;
  std::lock_guard<std::mutex> lock(stats_mu_);
  if (observed_ < 4) return false;
  double expected = avg_us_ * std::max(1.0, static_cast<double>(rows) / std::max(1.0, avg_rows_));
  return expected <= static_cast<double>(options_.inline_max_us);
}

void InstancePool::Observe(int64_t rows, double micros) {
  if (options_.inline_max_us <= 0) return;
  // The mean of the first 8 executions, then exponential moving averages (1/8 weight for the newest).
  std::lock_guard<std::mutex> lock(stats_mu_);
  ++observed_;
  double w = 1.0 / static_cast<double>(std::min<int64_t>(observed_, 8));
  avg_us_ += w * (micros - avg_us_);
  avg_rows_ += w * (static_cast<double>(rows) - avg_rows_);
}

void InstancePool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  watch_cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  if (watchdog_.joinable()) watchdog_.join();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !AnyLent(); });  // a caller still running a request inline
}

int64_t InstancePool::GatherableRows(size_t* count) const {
  const InferRequest& first = *queue_.front().request;
  int64_t rows = 0;
  size_t n = 0;
  for (const Item& item : queue_) {
    const InferRequest& r = *item.request;
    if (n > 0 && (rows + r.batch_size > config_.max_batch_size || !CanBatchTogether(first, r))) break;
    rows += r.batch_size;
    ++n;
  }
  *count = n;
  return rows;
}

std::vector<InstancePool::Item> InstancePool::NextBatch(std::unique_lock<std::mutex>& lock, size_t index,
                                                        std::vector<Item>* expired) {
  slots_[index].busy = false;
  for (;;) {
    cv_.wait(lock, [&] { return !slots_[index].lent && (stopping_ || !queue_.empty()); });
    Clock::time_point now = Clock::now();
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->request->deadline < now) {
        expired->push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    if (queue_.empty()) return {};  // stopping with nothing left, or only expired requests to answer

    size_t take = 1;
    if (config_.dynamic_batching) {
      const DynamicBatching& db = *config_.dynamic_batching;
      size_t count = 0;
      int64_t rows = GatherableRows(&count);
      // Full: max_batch_size reached, or the next request cannot join (FIFO: it must not be overtaken).
      bool full = rows >= config_.max_batch_size || count < queue_.size();
      int64_t preferred = 0;
      for (int64_t p : db.preferred_batch_sizes) {
        if (p <= rows) preferred = p;
      }
      Clock::time_point flush_at = queue_.front().enqueued + std::chrono::microseconds(db.max_queue_delay_us);
      if (!full && preferred == 0 && now < flush_at && !stopping_) {
        cv_.wait_until(lock, flush_at);
        continue;
      }
      take = count;
      if (!full && preferred > 0) {  // the largest preferred size the queue can fill
        int64_t acc = 0;
        take = 0;
        for (const Item& item : queue_) {
          if (take == count || acc + item.request->batch_size > preferred) break;
          acc += item.request->batch_size;
          ++take;
        }
        take = std::max<size_t>(take, 1);
      }
    }
    std::vector<Item> batch;
    batch.reserve(take);
    for (size_t i = 0; i < take; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    slots_[index].busy = true;
    return batch;
  }
}

void InstancePool::RunExecutor(size_t index) {
  // "x:" + the model's name, as `top -H` and perf show it (15 characters at most).
  pthread_setname_np(pthread_self(), ("x:" + config_.name).substr(0, 15).c_str());
  for (;;) {
    std::vector<Item> expired;
    std::vector<Item> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      batch = NextBatch(lock, index, &expired);
    }
    options_.metrics->queue_depth.fetch_sub(static_cast<int64_t>(batch.size() + expired.size()),
                                            std::memory_order_relaxed);
    Clock::time_point now = Clock::now();
    for (Item& item : expired) {
      int64_t waited = MicrosBetween(item.enqueued, now);
      Finish(item,
             Status(StatusCode::kDeadlineExceeded, "model '" + config_.name + "': request waited " +
                                                       std::to_string(waited) + " us in the queue, past its timeout"),
             waited, 0);
    }
    if (batch.empty()) {
      if (expired.empty()) return;  // stopping, and the queue is drained
      continue;
    }
    RunBatch(index, batch);
  }
}

void InstancePool::RunBatch(size_t slot, std::vector<Item>& batch) {
  // Backends must not throw, but a plugin that does (or bad_alloc on a large
  // batch) fails these requests, not the process.
  try {
    RunBatchUnguarded(slot, batch);
  } catch (const std::exception& e) {
    if (!EndExecution(slot)) return;
    for (Item& item : batch) {
      if (item.done) Finish(item, Internal(std::string("model '") + config_.name + "': " + e.what()), 0, 0);
    }
  }
}

void InstancePool::RunBatchUnguarded(size_t slot, std::vector<Item>& batch) {
  Clock::time_point start = Clock::now();
  ModelMetrics& m = *options_.metrics;
  std::vector<int64_t> rows;
  int64_t total = 0;
  for (const Item& item : batch) {
    rows.push_back(item.request->batch_size);
    total += item.request->batch_size;
  }
  m.execution_count.fetch_add(1, std::memory_order_relaxed);
  m.inference_count.fetch_add(static_cast<uint64_t>(total), std::memory_order_relaxed);
  m.batch_size.Observe(static_cast<uint64_t>(total));

  ModelInstance& instance = *options_.instances[slot];
  if (batch.size() == 1) {  // nothing to merge or split
    BeginExecution(slot, batch);
    Result<InferResponse> r = ExecuteRequest(instance, config_, options_.version, *batch[0].request);
    Clock::time_point end = Clock::now();
    if (!EndExecution(slot)) return;
    // Only successes count: requests failing fast in the backend must not make a slow model look fast.
    if (r.ok()) Observe(total, std::chrono::duration<double, std::micro>(end - start).count());
    m.ObserveExecution(total, MicrosBetween(start, end));
    Finish(batch[0], std::move(r), MicrosBetween(batch[0].enqueued, start), MicrosBetween(start, end));
    return;
  }
  std::vector<InferRequest*> requests;
  for (Item& item : batch) requests.push_back(item.request.get());
  std::vector<Tensor> inputs = MergeInputs(requests);
  std::vector<Tensor> outputs;
  BeginExecution(slot, batch);
  Status s = instance.Execute(inputs, &outputs);
  if (!EndExecution(slot)) return;
  s = s.ok() ? ValidateOutputs(config_, total, outputs) : WithModel(config_, options_.version, s);
  Clock::time_point end = Clock::now();
  if (s.ok()) Observe(total, std::chrono::duration<double, std::micro>(end - start).count());
  int64_t compute_us = MicrosBetween(start, end);
  m.ObserveExecution(total, compute_us);
  if (!s.ok()) {  // every request of a failed batch gets the error
    for (Item& item : batch) Finish(item, s, MicrosBetween(item.enqueued, start), compute_us);
    return;
  }
  std::vector<std::vector<Tensor>> parts = SplitOutputs(std::move(outputs), rows);
  for (size_t i = 0; i < batch.size(); ++i) {
    Finish(batch[i], MakeResponse(config_, options_.version, *batch[i].request, std::move(parts[i])),
           MicrosBetween(batch[i].enqueued, start), compute_us);
  }
}

void InstancePool::BeginExecution(size_t slot, std::vector<Item>& batch) {
  if (options_.execution_timeout_ms <= 0) return;
  bool sooner;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Slot& s = slots_[slot];
    s.running = &batch;
    s.timed_out = false;
    s.must_end = Clock::now() + std::chrono::milliseconds(options_.execution_timeout_ms);
    sooner = s.must_end < watch_next_;
  }
  if (sooner) watch_cv_.notify_one();
}

bool InstancePool::EndExecution(size_t slot) {
  if (options_.execution_timeout_ms <= 0) return true;
  std::lock_guard<std::mutex> lock(mu_);
  Slot& s = slots_[slot];
  s.running = nullptr;
  if (!s.timed_out) return true;
  s.timed_out = false;
  options_.metrics->stuck_instances.fetch_sub(1, std::memory_order_relaxed);
  spdlog::warn("model '{}' version {}: instance {} returned after its execution timeout; it serves again", config_.name,
               options_.version, slot);
  return false;
}

void InstancePool::Watchdog() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    Clock::time_point now = Clock::now();
    Clock::time_point next = now + std::chrono::seconds(1);
    std::vector<Item> expired, timed_out;
    std::vector<std::pair<size_t, int64_t>> stuck;  // slot, ms running
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->request->deadline < now) {
        expired.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        next = std::min(next, it->request->deadline);
        ++it;
      }
    }
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& s = slots_[i];
      if (!s.running || s.timed_out) continue;
      if (s.must_end <= now) {
        for (Item& item : *s.running) {
          if (item.done) timed_out.push_back(Item{nullptr, std::move(item.done), item.enqueued});
          item.done = nullptr;
        }
        s.timed_out = true;
        stuck.emplace_back(i, options_.execution_timeout_ms);
        options_.metrics->stuck_instances.fetch_add(1, std::memory_order_relaxed);
      } else {
        next = std::min(next, s.must_end);
      }
    }
    if (!expired.empty() || !timed_out.empty()) {
      lock.unlock();
      options_.metrics->queue_depth.fetch_sub(static_cast<int64_t>(expired.size()), std::memory_order_relaxed);
      for (Item& item : expired) {
        int64_t waited = MicrosBetween(item.enqueued, now);
        Finish(item,
               Status(StatusCode::kDeadlineExceeded, "model '" + config_.name + "': request waited " +
                                                         std::to_string(waited) + " us in the queue, past its timeout"),
               waited, 0);
      }
      for (auto [slot, ms] : stuck) {
        spdlog::error(
            "model '{}' version {}: instance {} still executing after {} ms (execution timeout): its "
            "requests fail with 504; the instance is stuck until the backend returns",
            config_.name, options_.version, slot, ms);
      }
      for (Item& item : timed_out) {
        Finish(item,
               Status(StatusCode::kDeadlineExceeded, "model '" + config_.name + "': execution took longer than " +
                                                         std::to_string(options_.execution_timeout_ms) +
                                                         " ms (execution_timeout_ms)"),
               0, options_.execution_timeout_ms * 1000);
      }
      lock.lock();
      continue;
    }
    watch_next_ = next;
    watch_cv_.wait_until(lock, next);
    watch_next_ = Clock::time_point::min();  // scanning: whoever adds a deadline meanwhile waits for the lock
  }
}

void InstancePool::Finish(Item& item, Result<InferResponse> result, int64_t queue_us, int64_t compute_us) {
  options_.metrics->queue_us.fetch_add(static_cast<uint64_t>(queue_us), std::memory_order_relaxed);
  options_.metrics->compute_us.fetch_add(static_cast<uint64_t>(compute_us), std::memory_order_relaxed);
  InferCompletion done = std::move(item.done);  // empty afterwards: answered exactly once
  item.done = nullptr;
  done(std::move(result));
}

}  // namespace berth
