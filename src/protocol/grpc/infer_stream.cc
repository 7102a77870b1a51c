// ModelStreamInfer: a bidirectional stream of inference requests, answered
// in the order they arrived. Requests run concurrently (up to kMaxPending per
// stream; past that the stream stops reading, and gRPC's flow control holds
// the client back); answers wait for their predecessors. A failed request is
// answered with error_message and the stream goes on, as Triton's does.
#include <spdlog/spdlog.h>

#include <deque>
#include <mutex>

#include "protocol/grpc/inference_service.h"

namespace berth {
namespace {

using inference::ModelInferRequest;
using inference::ModelStreamInferResponse;

constexpr size_t kMaxPending = 64;

class InferStream final : public grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse> {
 public:
  InferStream(InferenceService* service, grpc::CallbackServerContext* ctx) : service_(service), ctx_(ctx) {
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed, or the call ended
      std::lock_guard<std::mutex> lock(mu_);
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    service_->in_flight().fetch_add(1, std::memory_order_relaxed);
    Slot* slot;
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lock(mu_);
      seq = first_seq_ + slots_.size();
      slots_.emplace_back();
      slot = &slots_.back();  // deque: stays where it is while others are added
    }
    // An error answer too says which request it is for.
    inference::ModelInferResponse* answer = slot->response.mutable_infer_response();
    answer->set_model_name(incoming_.model_name());
    answer->set_model_version(incoming_.model_version());
    answer->set_id(incoming_.id());
    // incoming_ is read by RunInfer before it returns (decoded into berth's request), so it may be reused below.
    service_->RunInfer(ctx_, incoming_, answer, [this, seq](Status s) { Complete(seq, s); });
    std::lock_guard<std::mutex> lock(mu_);
    if (slots_.size() < kMaxPending) {
      StartRead(&incoming_);
    } else {
      read_paused_ = true;
    }
  }

  void OnWriteDone(bool ok) override {
    service_->in_flight().fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) broken_ = true;  // the client went away: the rest is answered to no one
    WriteNextLocked();
    if (read_paused_ && slots_.size() < kMaxPending && !reads_done_) {
      read_paused_ = false;
      StartRead(&incoming_);
    }
    MaybeFinishLocked();
  }

  void OnDone() override { delete this; }

 private:
  struct Slot {
    bool ready = false;
    ModelStreamInferResponse response;
  };

  void Complete(uint64_t seq, const Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    Slot& slot = slots_[seq - first_seq_];
    if (!s.ok()) slot.response.set_error_message(s.message());
    slot.ready = true;
    WriteNextLocked();
    MaybeFinishLocked();
  }

  // Writes the oldest answer once it is ready; one write at a time.
  void WriteNextLocked() {
    while (!writing_ && !slots_.empty() && slots_.front().ready) {
      if (broken_) {
        service_->in_flight().fetch_sub(1, std::memory_order_relaxed);
        slots_.pop_front();
        ++first_seq_;
        continue;
      }
      writing_now_ = std::move(slots_.front().response);
      slots_.pop_front();
      ++first_seq_;
      writing_ = true;
      StartWrite(&writing_now_);
    }
  }

  void MaybeFinishLocked() {
    if (finished_ || !reads_done_ || writing_ || !slots_.empty()) return;
    finished_ = true;
    Finish(ctx_->IsCancelled() ? grpc::Status::CANCELLED : grpc::Status::OK);
  }

  InferenceService* service_;
  grpc::CallbackServerContext* ctx_;
  ModelInferRequest incoming_;
  std::mutex mu_;
  std::deque<Slot> slots_;  // answers not yet written, oldest first
  uint64_t first_seq_ = 0;  // sequence number of slots_.front()
  ModelStreamInferResponse writing_now_;
  bool writing_ = false;
  bool reads_done_ = false;
  bool read_paused_ = false;
  bool broken_ = false;
  bool finished_ = false;
};

}  // namespace

grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>* NewInferStream(InferenceService* service,
                                                                                     grpc::CallbackServerContext* ctx) {
  return new InferStream(service, ctx);
}

}  // namespace berth
