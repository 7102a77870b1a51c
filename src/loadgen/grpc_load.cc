#include "loadgen/grpc_load.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/file_util.h"
#include "protocol/grpc/grpc_codec.h"
#include "protocol/grpc/inference.grpc.pb.h"

namespace berth {

using Clock = std::chrono::steady_clock;

struct GrpcLoad::Impl {
  GrpcLoadOptions options;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  inference::ModelInferRequest request;

  // A channel of its own (a distinct channel argument keeps gRPC from sharing one connection between them).
  std::unique_ptr<inference::GRPCInferenceService::Stub> NewStub(int index) const {
    grpc::ChannelArguments args;
    args.SetInt("berth.bench.stream", index);
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    return inference::GRPCInferenceService::NewStub(
        grpc::CreateCustomChannel(options.host + ":" + options.port, credentials, args));
  }
};

namespace {

// One closed loop: the next call starts when the previous one finished. Its
// callbacks run on gRPC's threads, one at a time (one call open at once).
class Stream {
 public:
  Stream(std::unique_ptr<inference::GRPCInferenceService::Stub> stub, const GrpcLoad::Impl& impl,
         Clock::time_point start, Clock::time_point end, std::function<void()> finished)
      : stub_(std::move(stub)), impl_(impl), start_(start), end_(end), finished_(std::move(finished)) {}

  void Send() {
    sent_at_ = Clock::now();
    if (sent_at_ >= end_) return finished_();  // its answer could not be counted
    {
      std::lock_guard<std::mutex> lock(mu_);
      context_ = std::make_unique<grpc::ClientContext>();
      context_->set_deadline(std::chrono::system_clock::now() + impl_.options.timeout);
    }
    response_.Clear();
    stub_->async()->ModelInfer(context_.get(), &impl_.request, &response_,
                               [this](grpc::Status status) { OnAnswer(status); });
  }

  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    if (context_) context_->TryCancel();
  }

  LevelResult counts;
  std::vector<int64_t> latencies_ns;

 private:
  void OnAnswer(const grpc::Status& status) {
    Clock::time_point now = Clock::now();
    if (now >= start_ && now <= end_) {
      ++counts.requests;
      if (status.ok()) {
        ++counts.successes;
        latencies_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent_at_).count());
      } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        ++counts.timeouts;
      } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
        ++counts.connection_errors;
      } else {
        ++counts.non_2xx;
        ++counts.status_counts[static_cast<int>(status.error_code())];  // the gRPC status code
      }
    }
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && now < end_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a dead server must not become a busy spin
    }
    Send();
  }

  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  const GrpcLoad::Impl& impl_;
  Clock::time_point start_, end_;
  std::function<void()> finished_;
  std::mutex mu_;  // context_: replaced by the loop, cancelled from Run's thread
  std::unique_ptr<grpc::ClientContext> context_;
  inference::ModelInferResponse response_;
  Clock::time_point sent_at_;
};

}  // namespace

GrpcLoad::GrpcLoad(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcLoad::~GrpcLoad() = default;

Result<std::unique_ptr<GrpcLoad>> GrpcLoad::Create(const GrpcLoadOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      Result<std::string> pem = ReadRegularFile(options.ca_file, 1 << 20);
      if (!pem.ok()) return InvalidArgument("--cacert " + options.ca_file + ": " + pem.status().message());
      ssl.pem_root_certs = std::move(pem).value();
    }
    impl->credentials = grpc::SslCredentials(ssl);
  } else {
    impl->credentials = grpc::InsecureChannelCredentials();
  }
  std::string where = options.host + ":" + options.port;
  auto stub = impl->NewStub(-1);
  inference::ModelMetadataRequest request;
  request.set_name(options.model);
  if (options.version > 0) request.set_version(std::to_string(options.version));
  inference::ModelMetadataResponse answer;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + options.timeout);
  grpc::Status status = stub->ModelMetadata(&context, request, &answer);
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Unavailable("gRPC server " + where + " is unreachable: " + status.error_message());
  }
  if (!status.ok()) {
    return NotFound("model '" + options.model + "': ModelMetadata answered " + std::to_string(status.error_code()) +
                    ": " + status.error_message());
  }
  std::unique_ptr<GrpcLoad> load(new GrpcLoad(std::move(impl)));
  ASSIGN_OR_RETURN(load->metadata_, DecodeGrpcModelMetadata(answer));
  return load;
}

size_t GrpcLoad::SetRequest(const InferRequest& request) {
  inference::ModelInferRequest& r = impl_->request;
  r.Clear();
  r.set_model_name(impl_->options.model);
  if (impl_->options.version > 0) r.set_model_version(std::to_string(impl_->options.version));
  for (const Tensor& t : request.inputs) {
    auto* in = r.add_inputs();
    in->set_name(t.name);
    in->set_datatype(std::string(DataTypeName(t.dtype)));
    for (int64_t d : t.shape) in->add_shape(d);
    r.add_raw_input_contents(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
  return r.ByteSizeLong();
}

void GrpcLoad::Run(int streams, Clock::time_point start, Clock::time_point end, LevelResult* counts,
                   std::vector<int64_t>* latencies_ns) {
  std::mutex mu;
  std::condition_variable cv;
  int running = streams;
  auto finished = [&] {
    std::lock_guard<std::mutex> lock(mu);
    if (--running == 0) cv.notify_all();
  };
  std::vector<std::unique_ptr<Stream>> loops;
  for (int i = 0; i < streams; ++i) {
    loops.push_back(std::make_unique<Stream>(impl_->NewStub(i), *impl_, start, end, finished));
  }
  for (auto& s : loops) s->Send();
  std::unique_lock<std::mutex> lock(mu);
  // Calls still open at the window's end are cancelled: the run is bounded whatever the server does.
  if (!cv.wait_until(lock, end + std::chrono::milliseconds(200), [&] { return running == 0; })) {
    lock.unlock();
    for (auto& s : loops) s->Cancel();
    lock.lock();
    cv.wait(lock, [&] { return running == 0; });
  }
  lock.unlock();
  for (auto& s : loops) {
    counts->requests += s->counts.requests;
    counts->successes += s->counts.successes;
    counts->connection_errors += s->counts.connection_errors;
    counts->timeouts += s->counts.timeouts;
    counts->non_2xx += s->counts.non_2xx;
    for (const auto& [code, n] : s->counts.status_counts) counts->status_counts[code] += n;
    latencies_ns->insert(latencies_ns->end(), s->latencies_ns.begin(), s->latencies_ns.end());
  }
}

}  // namespace berth
