#include "app/lifecycle.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <thread>

namespace berth {
namespace {

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForShutdownSignal(const std::function<void()>& on_hangup) {
  sigset_t set = ShutdownSignals();
  for (;;) {
    int signo = 0;
    if (sigwait(&set, &signo) != 0) continue;
    if (signo != SIGHUP) return signo;
    if (on_hangup) on_hangup();
  }
}

DrainResult Drain(InferenceServer& server, const std::vector<FrontEnd*>& front_ends, std::chrono::milliseconds grace) {
  using Clock = std::chrono::steady_clock;
  Clock::time_point start = Clock::now();
  server.BeginDrain();
  for (FrontEnd* f : front_ends) f->BeginDrain();
  auto in_flight = [&] {
    int64_t n = server.in_flight();
    for (FrontEnd* f : front_ends) n = std::max(n, f->InFlight());
    return n;
  };
  Clock::time_point deadline = start + grace;
  while (in_flight() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  DrainResult result;
  result.unanswered = in_flight();
  for (FrontEnd* f : front_ends) f->Stop();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace berth
