// The scheduler interface: where requests wait for an executor. Dynamic
// batching implements this same interface.
#pragma once

#include <functional>
#include <memory>

#include "berth/status.h"
#include "request/infer_request.h"

namespace berth {

// Called exactly once per request with the response or the error.
using InferCompletion = std::function<void(Result<InferResponse>)>;

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // Takes ownership of a validated request. `done` runs on an executor
  // thread, or on the caller's thread when the request is refused at once
  // (ResourceExhausted when the queue is full, Unavailable once stopping).
  // Never blocks, unless `may_run_here`: then a scheduler may instead
  // execute the request on the caller's thread when that is cheaper than a
  // hand-off (an idle instance of a model measured fast), returning after
  // `done` ran there. The caller must keep the scheduler alive until
  // Enqueue returns.
  virtual void Enqueue(std::unique_ptr<InferRequest> request, InferCompletion done, bool may_run_here = false) = 0;

  // Refuses new requests, finishes the queued ones, and joins the executors.
  virtual void Stop() = 0;

  // Whether the model can answer now, beyond being loaded (a pipeline whose
  // remote step is marked down cannot): its readiness.
  virtual Status Health() const { return Status::Ok(); }
};

}  // namespace berth
