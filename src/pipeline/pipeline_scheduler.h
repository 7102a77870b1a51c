// A pipeline at request time: each request runs the steps its outputs need,
// every step as soon as the tensors it reads are there (steps that do not
// depend on each other run at once), through the InferenceServer, so a step
// model's own queue, batcher and metrics serve pipeline and direct traffic
// alike. A pipeline is a Scheduler like any model's: the server's request
// path (validation, deadlines, metrics) runs in front of it unchanged.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "common/model_config.h"
#include "common/pipeline_spec.h"
#include "metrics/model_metrics.h"
#include "scheduler/scheduler.h"
#include "server/inference_server.h"

namespace berth {

class RemoteStep;

class PipelineScheduler final : public Scheduler {
 public:
  // `config` is the pipeline's, complete (outputs typed from the steps);
  // `server` outlives this scheduler.
  PipelineScheduler(InferenceServer* server, std::shared_ptr<const ModelConfig> config, int64_t version,
                    std::shared_ptr<ModelMetrics> metrics, std::vector<std::unique_ptr<RemoteStep>> remotes);
  ~PipelineScheduler() override;

  void Enqueue(std::unique_ptr<InferRequest> request, InferCompletion done, bool may_run_here = false) override;
  // Refuses new requests and waits for those in the pipeline to finish.
  void Stop() override;
  // Unavailable while a remote step that the pipeline cannot do without
  // (no on_error: skip) is marked down by its circuit breaker.
  Status Health() const override;

  struct Run;  // one request's progress through the steps

 private:
  void StartStep(const std::shared_ptr<Run>& run, size_t step);
  // A step answered (or was skipped: an input of it is absent).
  void FinishStep(const std::shared_ptr<Run>& run, size_t step, Result<InferResponse> result, bool skipped = false);
  // Answers the request: `failure`, or (Ok) the outputs the steps produced.
  void Finish(const std::shared_ptr<Run>& run, Status failure);
  // parameters.trace: trace.total_us, and per needed step trace.STEP.outcome
  // (ok, skipped, error), .start_us (from the pipeline's start) and .duration_us.
  void AddTrace(Run& run, int64_t total_us, InferResponse* response) const;
  // Answers 504 for each run whose deadline passed while a step still ran
  // (the step's late answer is then dropped).
  void WatchDeadlines();

  InferenceServer* server_;
  std::shared_ptr<const ModelConfig> config_;
  const PipelineSpec& spec_;
  int64_t version_;
  std::shared_ptr<ModelMetrics> metrics_;
  std::vector<std::unique_ptr<RemoteStep>> remotes_;  // by step; null for local steps
  // For each step, the steps that read its outputs; for each pipeline output
  // (and step), the steps it needs.
  std::vector<std::vector<size_t>> readers_;
  std::vector<std::vector<size_t>> step_deps_;
  std::vector<std::vector<size_t>> output_steps_;  // per pipeline output: the steps its alternatives read

  std::mutex mu_;
  std::condition_variable idle_;
  int64_t in_flight_ = 0;  // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  // Runs with a deadline, by deadline.
  std::multimap<std::chrono::steady_clock::time_point, std::weak_ptr<Run>> deadlines_;  // GUARDED_BY(mu_)
  std::condition_variable deadline_changed_;
  bool watch_stop_ = false;  // GUARDED_BY(mu_)
  std::thread watchdog_;
};

}  // namespace berth
