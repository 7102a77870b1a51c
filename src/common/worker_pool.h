// A fixed set of threads that run submitted tasks in order: work that must
// not run on an I/O thread (decoding a large request body) but is too small
// for a thread of its own.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace berth {

class WorkerPool {
 public:
  // `threads` threads named `name` (at most 15 characters show in top -H).
  WorkerPool(int threads, std::string name);
  ~WorkerPool();  // runs what was submitted, then joins

  // Queues `task`; it runs on one of the pool's threads. An exception it
  // throws is caught and logged (the pool goes on).
  void Submit(std::function<void()> task);

 private:
  void Loop();

  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  bool stop_ = false;                        // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace berth
