#include "scheduler/instance_pool.h"

#include <spdlog/spdlog.h>

#include "request/validate.h"

namespace berth {

Result<InferResponse> ExecuteRequest(ModelInstance& instance, const ModelConfig& config, int64_t version,
                                     InferRequest& request) {
  std::vector<Tensor> outputs;
  Status s = instance.Execute(request.inputs, &outputs);
  if (!s.ok()) {
    // The backend's message is passed on; the code decides the HTTP status.
    return Status(s.code(), "model '" + config.name + "' version " + std::to_string(version) + ": " + s.message());
  }
  RETURN_IF_ERROR(ValidateOutputs(config, request.batch_size, outputs));
  return MakeResponse(config, version, request, std::move(outputs));
}

Result<std::unique_ptr<InstancePool>> InstancePool::Create(Options options) {
  if (!options.config) return InvalidArgument("InstancePool needs a config");
  if (options.instances.empty()) return InvalidArgument("InstancePool needs at least one instance");
  std::unique_ptr<InstancePool> pool(new InstancePool(std::move(options)));
  for (auto& instance : pool->options_.instances) {
    pool->threads_.emplace_back([p = pool.get(), i = instance.get()] { p->RunExecutor(i); });
  }
  return pool;
}

InstancePool::InstancePool(Options options) : options_(std::move(options)) {}

InstancePool::~InstancePool() { Stop(); }

void InstancePool::Enqueue(std::unique_ptr<InferRequest> request, InferCompletion done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      done(Unavailable("model '" + options_.config->name + "' is shutting down"));
      return;
    }
    if (queue_.size() >= options_.max_queue_size) {
      done(ResourceExhausted("model '" + options_.config->name + "': queue is full (" +
                             std::to_string(options_.max_queue_size) + " requests waiting); retry later"));
      return;
    }
    queue_.push_back(Item{std::move(request), std::move(done)});
  }
  cv_.notify_one();
}

void InstancePool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void InstancePool::RunExecutor(ModelInstance* instance) {
  const ModelConfig& config = *options_.config;
  for (;;) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    item.done(ExecuteRequest(*instance, config, options_.version, *item.request));
  }
}

}  // namespace berth
