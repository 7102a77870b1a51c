// KServe v2 gRPC for remote steps: one channel per target (HTTP/2 carries
// the concurrent calls), raw input contents, the remaining deadline as the
// call's deadline, the bearer token and traceparent as metadata.
#include <grpcpp/grpcpp.h>

#include "net/url.h"
#include "pipeline/remote_transport.h"
#include "protocol/grpc/grpc_codec.h"
#include "protocol/grpc/inference.grpc.pb.h"

namespace berth {

using Clock = std::chrono::steady_clock;

namespace {

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    default: return "code " + std::to_string(static_cast<int>(code));
  }
}

Status FromGrpc(const grpc::Status& s) {
  return Status(FromGrpcCode(s.error_code()), "answered " + CodeName(s.error_code()) + ": " + s.error_message());
}

// One call in flight: what gRPC reads and writes until the callback.
struct Call {
  grpc::ClientContext context;
  inference::ModelInferRequest request;
  inference::ModelInferResponse response;
};

class GrpcTransport final : public RemoteTransport {
 public:
  GrpcTransport(const RemoteModel& remote, std::string token, std::chrono::milliseconds timeout)
      : remote_(remote), token_(std::move(token)), timeout_(timeout) {}

  Status Init() {
    ASSIGN_OR_RETURN(Url url, ParseUrl(remote_.url));
    if (url.target != "/") return InvalidArgument("remote.url: a gRPC target is scheme://host:port, without a path");
    std::shared_ptr<grpc::ChannelCredentials> credentials =
        url.tls ? grpc::SslCredentials(grpc::SslCredentialsOptions()) : grpc::InsecureChannelCredentials();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(1 << 30);
    args.SetMaxSendMessageSize(1 << 30);
    // Reconnect soon after the target comes back (gRPC's default back-off grows to 2 minutes).
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    stub_ =
        inference::GRPCInferenceService::NewStub(grpc::CreateCustomChannel(host + ":" + url.port, credentials, args));
    return Status::Ok();
  }

  Result<V2ModelMetadata> FetchMetadata() override {
    inference::ModelMetadataRequest request;
    request.set_name(remote_.model);
    if (remote_.version > 0) request.set_version(std::to_string(remote_.version));
    inference::ModelMetadataResponse answer;
    grpc::ClientContext context;
    Decorate(&context, "");
    context.set_deadline(std::chrono::system_clock::now() + timeout_);
    grpc::Status status = stub_->ModelMetadata(&context, request, &answer);
    if (!status.ok()) return FromGrpc(status);
    return DecodeGrpcModelMetadata(answer);
  }

  void Infer(const InferRequest& request, Clock::time_point deadline, Done done) override {
    auto call = std::make_shared<Call>();
    Decorate(&call->context, request.traceparent);
    auto wall = std::chrono::system_clock::now() + timeout_;
    if (deadline != Clock::time_point::max()) {
      wall =
          std::min(wall, std::chrono::system_clock::now() +
                             std::chrono::duration_cast<std::chrono::system_clock::duration>(deadline - Clock::now()));
    }
    call->context.set_deadline(wall);
    EncodeGrpcInferRequest(request, remote_.model, remote_.version, &call->request);
    stub_->async()->ModelInfer(
        &call->context, &call->request, &call->response, [call, done = std::move(done)](grpc::Status status) {
          if (!status.ok()) {
            grpc::StatusCode c = status.error_code();
            bool unavailable = c == grpc::StatusCode::UNAVAILABLE;
            bool failed = unavailable || c == grpc::StatusCode::DEADLINE_EXCEEDED || c == grpc::StatusCode::INTERNAL ||
                          c == grpc::StatusCode::UNKNOWN;
            return done(FromGrpc(status), unavailable, failed);
          }
          Result<InferResponse> response = DecodeGrpcInferResponse(call->response);
          if (!response.ok()) {
            return done(Internal("its answer does not decode: " + response.status().message()), false, false);
          }
          done(std::move(response), false, false);
        });
  }

 private:
  void Decorate(grpc::ClientContext* context, const std::string& traceparent) const {
    if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
    if (!traceparent.empty()) context->AddMetadata("traceparent", traceparent);
  }

  RemoteModel remote_;
  std::string token_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

}  // namespace

Result<std::unique_ptr<RemoteTransport>> NewGrpcTransport(const RemoteModel& remote, std::string token,
                                                          std::chrono::milliseconds timeout) {
  auto t = std::make_unique<GrpcTransport>(remote, std::move(token), timeout);
  RETURN_IF_ERROR(t->Init());
  return std::unique_ptr<RemoteTransport>(std::move(t));
}

}  // namespace berth
