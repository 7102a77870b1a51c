// The serve lifecycle: shutdown signals, draining and the "loaded" state in
// one place, for every front end the server runs (HTTP, metrics, gRPC). Readiness answers 503 from the moment draining
// starts.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "server/front_end.h"
#include "server/inference_server.h"

namespace berth {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and in every
// thread it starts afterwards, so that WaitForShutdownSignal alone receives
// them. Call before starting any thread.
void BlockShutdownSignals();

// Waits for SIGINT or SIGTERM; returns which. Each SIGHUP meanwhile calls
// `on_hangup` (re-read the TLS certificate) on this thread and waits on.
int WaitForShutdownSignal(const std::function<void()>& on_hangup);

struct DrainResult {
  int64_t unanswered = 0;  // requests still in flight when the grace period ended
  double seconds = 0;      // how long the drain took
};

// Drains: the server stops being ready, every front end stops accepting and
// answers the requests it already read, for at most `grace`; then the front
// ends stop.
DrainResult Drain(InferenceServer& server, const std::vector<FrontEnd*>& front_ends, std::chrono::milliseconds grace);

}  // namespace berth
