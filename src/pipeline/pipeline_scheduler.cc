#include "pipeline/pipeline_scheduler.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "common/pipeline_condition.h"
#include "pipeline/remote_step.h"
#include "request/classification.h"

namespace berth {

using Clock = std::chrono::steady_clock;

struct PipelineScheduler::Run {
  enum class StepState { kUnneeded, kWaiting, kRunning, kDone, kSkipped };

  std::unique_ptr<InferRequest> request;
  InferCompletion done;
  Clock::time_point start = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();

  std::mutex mu;
  // Present tensors by reference ("$in.x", "step.output"); an absent one is not here.
  std::map<std::string, Tensor, std::less<>> tensors;  // GUARDED_BY(mu)
  std::vector<StepState> state;                        // GUARDED_BY(mu)
  std::vector<size_t> waiting_on;                      // unfinished steps each step reads from; GUARDED_BY(mu)
  std::vector<Clock::time_point> started;              // when each step was sent; GUARDED_BY(mu)
  // parameters.trace: when each step answered and how, and the traces of nested pipelines.
  std::vector<Clock::time_point> ended;                              // GUARDED_BY(mu)
  std::vector<const char*> outcome;                                  // GUARDED_BY(mu)
  std::vector<std::pair<std::string, ParameterValue>> nested_trace;  // GUARDED_BY(mu)
  size_t remaining = 0;                                              // needed steps not finished; GUARDED_BY(mu)
  bool finished = false;                                             // answered (or failing); GUARDED_BY(mu)
  bool allow_inline = false;                                         // steps may run on the thread that starts them
};

namespace {

std::string StepWhere(const PipelineStep& s) {
  if (s.remote) {
    return "step '" + s.name + "' (remote " + s.remote->url + " model " + s.remote->model +
           (s.remote->protocol == RemoteProtocol::kGrpc ? " over gRPC)" : ")");
  }
  return "step '" + s.name + "' (model '" + s.model + "')";
}

}  // namespace

PipelineScheduler::PipelineScheduler(InferenceServer* server, std::shared_ptr<const ModelConfig> config,
                                     int64_t version, std::shared_ptr<ModelMetrics> metrics,
                                     std::vector<std::unique_ptr<RemoteStep>> remotes)
    : server_(server),
      config_(std::move(config)),
      spec_(*config_->pipeline),
      version_(version),
      metrics_(std::move(metrics)),
      remotes_(std::move(remotes)) {
  remotes_.resize(spec_.steps.size());
  for (const PipelineStep& step : spec_.steps) {
    metrics_->steps.push_back(std::make_unique<StepMetrics>());
    metrics_->steps.back()->name = step.name;
  }
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < spec_.steps.size(); ++i) index[spec_.steps[i].name] = i;
  for (const PipelineOutput& out : spec_.outputs) {
    output_steps_.emplace_back();
    for (const TensorRef& ref : out.from) {
      if (!ref.is_input()) output_steps_.back().push_back(index.at(ref.step));
    }
  }
  readers_.resize(spec_.steps.size());
  step_deps_.resize(spec_.steps.size());
  for (size_t i = 0; i < spec_.steps.size(); ++i) {
    for (const TensorRef& ref : StepReads(spec_.steps[i])) {
      if (ref.is_input()) continue;
      size_t d = index.at(ref.step);
      if (std::find(step_deps_[i].begin(), step_deps_[i].end(), d) == step_deps_[i].end()) {
        step_deps_[i].push_back(d);
        readers_[d].push_back(i);
      }
    }
  }
  watchdog_ = std::thread([this] { WatchDeadlines(); });
}

PipelineScheduler::~PipelineScheduler() {
  Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    watch_stop_ = true;
  }
  deadline_changed_.notify_all();
  watchdog_.join();
}

void PipelineScheduler::WatchDeadlines() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!watch_stop_) {
    if (deadlines_.empty()) {
      deadline_changed_.wait(lock);
      continue;
    }
    auto first = deadlines_.begin();
    if (Clock::now() < first->first) {
      deadline_changed_.wait_until(lock, first->first);
      continue;
    }
    std::shared_ptr<Run> run = first->second.lock();
    deadlines_.erase(first);
    if (!run) continue;
    lock.unlock();
    std::unique_lock<std::mutex> run_lock(run->mu);
    if (!run->finished) {
      run->finished = true;
      std::string running;
      for (size_t i = 0; i < spec_.steps.size(); ++i) {
        if (run->state[i] == Run::StepState::kRunning) {
          running += (running.empty() ? "" : ", ") + StepWhere(spec_.steps[i]);
          StepMetrics& m = *metrics_->steps[i];
          m.timeout.fetch_add(1, std::memory_order_relaxed);
          m.duration_us.Observe(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - run->started[i]).count()));
        }
      }
      run_lock.unlock();
      Finish(run, Status(StatusCode::kDeadlineExceeded,
                         (running.empty() ? std::string("pipeline '" + config_->name + "'") : running) +
                             ": no answer within the request's deadline" +
                             (spec_.timeout_ms > 0 ? " (limits.timeout_ms " + std::to_string(spec_.timeout_ms) + ")"
                                                   : std::string())));
    }
    lock.lock();
  }
}

void PipelineScheduler::Enqueue(std::unique_ptr<InferRequest> request, InferCompletion done, bool may_run_here) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return done(Unavailable("pipeline '" + config_->name + "' is stopping"));
    if (in_flight_ >= spec_.max_inflight) {
      return done(Status(StatusCode::kResourceExhausted, "pipeline '" + config_->name +
                                                             "': " + std::to_string(spec_.max_inflight) +
                                                             " requests in flight (limits.max_inflight); retry later"));
    }
    ++in_flight_;
  }
  auto run = std::make_shared<Run>();
  run->done = std::move(done);
  run->deadline = request->deadline;
  if (spec_.timeout_ms > 0) {
    run->deadline = std::min(run->deadline, run->start + std::chrono::milliseconds(spec_.timeout_ms));
  }
  for (Tensor& t : request->inputs) run->tensors.emplace("$in." + t.name, std::move(t));
  request->inputs.clear();
  run->request = std::move(request);

  // Only the steps that the requested outputs need run.
  size_t n = spec_.steps.size();
  run->state.assign(n, Run::StepState::kUnneeded);
  run->waiting_on.assign(n, 0);
  run->started.assign(n, Clock::time_point());
  if (run->request->trace) {
    run->ended.assign(n, Clock::time_point());
    run->outcome.assign(n, "");
  }
  std::vector<size_t> stack;
  for (size_t o = 0; o < spec_.outputs.size(); ++o) {
    const std::string& name = spec_.outputs[o].name;
    bool requested =
        run->request->outputs.empty() || std::any_of(run->request->outputs.begin(), run->request->outputs.end(),
                                                     [&](const RequestedOutput& ro) { return ro.name == name; });
    if (requested) stack.insert(stack.end(), output_steps_[o].begin(), output_steps_[o].end());
  }
  while (!stack.empty()) {
    size_t i = stack.back();
    stack.pop_back();
    if (run->state[i] != Run::StepState::kUnneeded) continue;
    run->state[i] = Run::StepState::kWaiting;
    ++run->remaining;
    for (size_t d : step_deps_[i]) stack.push_back(d);
  }
  std::vector<size_t> ready;
  for (size_t i = 0; i < n; ++i) {
    if (run->state[i] != Run::StepState::kWaiting) continue;
    for (size_t d : step_deps_[i]) run->waiting_on[i] += run->state[d] != Run::StepState::kUnneeded;
    if (run->waiting_on[i] == 0) ready.push_back(i);
  }
  if (run->remaining == 0) {
    std::unique_lock<std::mutex> lock(run->mu);
    run->finished = true;
    lock.unlock();
    return Finish(run, Status::Ok());
  }
  if (run->deadline != Clock::time_point::max()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      deadlines_.emplace(run->deadline, run);
    }
    deadline_changed_.notify_all();
  }
  // Where the server lets the pipeline run on its caller's thread (a nearly
  // idle server), the first steps may too; later steps start on the thread
  // that finished the step before, and the server decides again for each.
  run->allow_inline = may_run_here;
  for (size_t i : ready) StartStep(run, i);
}

void PipelineScheduler::StartStep(const std::shared_ptr<Run>& run, size_t i) {
  const PipelineStep& step = spec_.steps[i];
  auto request = std::make_unique<InferRequest>();
  bool absent = false;
  {
    std::lock_guard<std::mutex> lock(run->mu);
    if (run->finished) return;
    run->state[i] = Run::StepState::kRunning;
    run->started[i] = Clock::now();
    if (step.when) {
      Result<bool> holds = step.when->Evaluate([&](const TensorRef& ref) -> const Tensor* {
        auto it = run->tensors.find(ref.ToString());
        return it == run->tensors.end() ? nullptr : &it->second;
      });
      if (!holds.ok() || !*holds) absent = true;  // a condition that does not hold skips the step
    }
    for (const auto& [name, ref] : step.inputs) {
      if (absent) break;
      auto it = run->tensors.find(ref.ToString());
      if (it == run->tensors.end()) {
        absent = true;  // an optional input left out, or a skipped step's output: this step is skipped too
        break;
      }
      Tensor t = it->second;
      t.name = name;
      request->inputs.push_back(std::move(t));
    }
    request->id = run->request->id;
    request->has_id = run->request->has_id;
    request->trace = run->request->trace;
    request->traceparent = run->request->traceparent;
  }
  if (absent) return FinishStep(run, i, Unavailable("skipped"), /*skipped=*/true);
  Clock::time_point deadline = run->deadline;
  if (step.timeout_ms > 0) deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds(step.timeout_ms));
  if (deadline != Clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return FinishStep(run, i, Status(StatusCode::kDeadlineExceeded, "the pipeline's deadline passed before it ran"));
    }
    request->timeout_us = left;
  }
  auto finish = [this, run, i](Result<InferResponse> result) { FinishStep(run, i, std::move(result)); };
  if (remotes_[i]) return remotes_[i]->Infer(std::move(request), deadline, std::move(finish));
  InferOptions options;
  options.allow_inline = run->allow_inline;
  options.nested = true;
  server_->InferAsync(step.model, step.version, std::move(request), std::move(finish), options);
}

void PipelineScheduler::FinishStep(const std::shared_ptr<Run>& run, size_t i, Result<InferResponse> result,
                                   bool skipped) {
  const PipelineStep& step = spec_.steps[i];
  std::vector<size_t> ready;
  std::unique_lock<std::mutex> lock(run->mu);
  if (run->finished) return;  // answered at the deadline: counted as a timeout there
  StepMetrics& m = *metrics_->steps[i];
  Clock::time_point now = Clock::now();
  const char* outcome = "skipped";
  if (skipped) {
    m.skipped.fetch_add(1, std::memory_order_relaxed);
  } else {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - run->started[i]).count();
    m.duration_us.Observe(static_cast<uint64_t>(us));
    bool timed_out = !result.ok() && result.status().code() == StatusCode::kDeadlineExceeded;
    (result.ok() ? m.ok : timed_out ? m.timeout : m.error).fetch_add(1, std::memory_order_relaxed);
    outcome = result.ok() ? "ok" : timed_out ? "timeout" : "error";
  }
  if (run->request->trace) {
    run->ended[i] = now;
    run->outcome[i] = outcome;
    if (result.ok()) {
      // A nested pipeline's (or a remote berth's) own trace, under this step's name.
      for (auto& [key, value] : result->parameters) {
        if (key.rfind("trace.", 0) == 0) {
          run->nested_trace.emplace_back("trace." + step.name + "." + key.substr(6), std::move(value));
        }
      }
    }
  }
  if (!result.ok() && !skipped && !step.skip_on_error) {
    run->finished = true;
    lock.unlock();
    Status s = result.status();
    // A step model that is gone is the pipeline being unavailable, not the client's unknown model.
    StatusCode code = s.code() == StatusCode::kNotFound ? StatusCode::kUnavailable : s.code();
    return Finish(run, Status(code, StepWhere(step) + ": " + s.message()));
  }
  if (result.ok()) {
    for (Tensor& t : result->outputs) {
      std::string key = step.name + "." + t.name;
      run->tensors.insert_or_assign(std::move(key), std::move(t));
    }
    run->state[i] = Run::StepState::kDone;
  } else {
    run->state[i] = Run::StepState::kSkipped;  // its outputs are absent
  }
  --run->remaining;
  for (size_t r : readers_[i]) {
    if (run->state[r] == Run::StepState::kWaiting && --run->waiting_on[r] == 0) ready.push_back(r);
  }
  if (run->remaining == 0) {
    run->finished = true;
    lock.unlock();
    return Finish(run, Status::Ok());
  }
  lock.unlock();
  for (size_t r : ready) StartStep(run, r);
}

void PipelineScheduler::Finish(const std::shared_ptr<Run>& run, Status failure) {
  // Every step has finished (or the run failed): nothing else touches run->tensors now.
  Result<InferResponse> result = failure;
  if (failure.ok()) {
    InferRequest& req = *run->request;
    InferResponse response;
    response.model_name = config_->name;
    response.model_version = version_;
    response.id = req.id;
    response.has_id = req.has_id;
    auto add = [&](const PipelineOutput& out, bool binary, int64_t classification) -> Status {
      for (const TensorRef& ref : out.from) {
        auto it = run->tensors.find(ref.ToString());
        if (it == run->tensors.end()) continue;
        Tensor t = it->second;
        t.name = out.name;
        if (classification > 0) {
          if (t.dtype == DataType::kBytes) {
            return InvalidArgument("output '" + out.name +
                                   "' is BYTES: parameters.classification needs numeric classes");
          }
          const TensorSpec* spec = config_->FindOutput(out.name);
          t = Classify(t, spec ? *spec : TensorSpec{}, config_->batched(), classification);
        }
        response.outputs.push_back(std::move(t));
        response.binary.push_back(binary);
        return Status::Ok();
      }
      if (out.optional) return Status::Ok();
      return Internal("pipeline '" + config_->name + "': output '" + out.name + "': no step produced " +
                      out.from.front().ToString());
    };
    Status s;
    if (req.outputs.empty()) {
      for (const PipelineOutput& out : spec_.outputs) {
        if (s.ok()) s = add(out, req.binary_output, 0);
      }
    } else {
      for (const RequestedOutput& ro : req.outputs) {
        for (const PipelineOutput& out : spec_.outputs) {
          if (out.name == ro.name && s.ok()) s = add(out, ro.binary, ro.classification);
        }
      }
    }
    if (s.ok()) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - run->start).count();
      if (req.trace) AddTrace(*run, us, &response);
      metrics_->inference_count.fetch_add(static_cast<uint64_t>(req.batch_size), std::memory_order_relaxed);
      metrics_->execution_count.fetch_add(1, std::memory_order_relaxed);
      metrics_->compute_us.fetch_add(static_cast<uint64_t>(us), std::memory_order_relaxed);
      metrics_->batch_size.Observe(static_cast<uint64_t>(req.batch_size));
      metrics_->ObserveExecution(req.batch_size, us);
      result = std::move(response);
    } else {
      result = s;
    }
  }
  InferCompletion done = std::move(run->done);
  done(std::move(result));
  std::lock_guard<std::mutex> lock(mu_);
  if (--in_flight_ == 0) idle_.notify_all();
}

void PipelineScheduler::AddTrace(Run& run, int64_t total_us, InferResponse* response) const {
  auto since_start = [&](Clock::time_point t) {
    return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(t - run.start).count());
  };
  auto& p = response->parameters;
  p.emplace_back("trace.total_us", total_us);
  for (size_t i = 0; i < spec_.steps.size(); ++i) {
    if (run.state[i] == Run::StepState::kUnneeded) continue;
    const std::string prefix = "trace." + spec_.steps[i].name + ".";
    p.emplace_back(prefix + "outcome", std::string(run.outcome[i]));
    if (std::string_view(run.outcome[i]) == "skipped") continue;
    p.emplace_back(prefix + "start_us", since_start(run.started[i]));
    p.emplace_back(prefix + "duration_us", since_start(run.ended[i]) - since_start(run.started[i]));
  }
  for (auto& entry : run.nested_trace) p.push_back(std::move(entry));
}

Status PipelineScheduler::Health() const {
  for (size_t i = 0; i < spec_.steps.size(); ++i) {
    if (!remotes_[i] || spec_.steps[i].skip_on_error) continue;
    if (int64_t down = remotes_[i]->DownForMs(); down > 0) {
      return Unavailable(StepWhere(spec_.steps[i]) + ": marked down after failures in a row; trying again in " +
                         std::to_string(down) + " ms");
    }
  }
  return Status::Ok();
}

void PipelineScheduler::Stop() {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  idle_.wait(lock, [this] { return in_flight_ == 0; });
}

}  // namespace berth
