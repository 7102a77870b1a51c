#include "protocol/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <climits>

#include "protocol/grpc/health_service.h"
#include "protocol/grpc/inference_service.h"

namespace berth {

namespace {
int SecondsToMs(int secs) { return secs > INT_MAX / 1000 ? INT_MAX : secs * 1000; }
}  // namespace

GrpcServer::GrpcServer(AccessPolicy access) : access_(std::move(access)) {}

GrpcServer::~GrpcServer() { Stop(); }

Result<std::unique_ptr<GrpcServer>> GrpcServer::Create(Options options, InferenceServer* server, AccessPolicy access) {
  std::unique_ptr<GrpcServer> s(new GrpcServer(std::move(access)));
  s->inference_ = std::make_unique<InferenceService>(server, &s->access_, &s->in_flight_);
  s->health_ = std::make_unique<HealthService>(server);

  grpc::ServerBuilder builder;
  std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
  std::string address = host + ":" + std::to_string(options.port);
  int selected = 0;
  builder.AddListeningPort(address, options.credentials ? options.credentials : grpc::InsecureServerCredentials(),
                           &selected);
  // gRPC's 4 MiB default would refuse ordinary image batches: the HTTP limit applies, decompressed.
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<int64_t>(options.max_message_bytes, INT_MAX)));
  builder.SetMaxSendMessageSize(INT_MAX);
  // Slow and idle connections are bounded as on the HTTP port (a streaming
  // call in progress is not idle).
  if (options.read_timeout_secs > 0)
    builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, SecondsToMs(options.read_timeout_secs));
  if (options.idle_timeout_secs > 0)
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, SecondsToMs(options.idle_timeout_secs));
  // A port in use must fail, not share it with another server.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(s->inference_.get());
  builder.RegisterService(s->health_.get());
  s->grpc_ = builder.BuildAndStart();
  if (!s->grpc_ || selected == 0) {
    s->health_->Shutdown();
    return Unavailable("gRPC: cannot listen on " + address + " (address in use, or not an address of this host)");
  }
  s->port_ = static_cast<uint16_t>(selected);
  return s;
}

void GrpcServer::BeginDrain() {
  // New inference calls get UNAVAILABLE from here on (the server's draining
  // flag); the health service reports "ready" NOT_SERVING.
}

void GrpcServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (health_) health_->Shutdown();
  if (grpc_) {
    // Calls still open (idle streams) are cancelled after a moment.
    grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    grpc_->Wait();
  }
}

}  // namespace berth
