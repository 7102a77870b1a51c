// A front end: a listener that turns a protocol's requests into calls on the
// InferenceServer (HTTP today; gRPC next). The serve lifecycle (app/) starts
// every front end, drains them together on SIGTERM and stops them.
#pragma once

#include <cstdint>

#include "berth/status.h"

namespace berth {

class FrontEnd {
 public:
  virtual ~FrontEnd() = default;
  // Starts serving on threads of its own. Listening sockets are bound
  // before (by its Create), so a port in use fails at once.
  virtual Status Start() = 0;
  // Stops taking new connections; requests already read are answered (new
  // requests on open connections get 503 as the server's draining flag says).
  virtual void BeginDrain() = 0;
  // Requests read and not yet answered.
  virtual int64_t InFlight() const = 0;
  // Called on one of this front end's event loop threads: the requests read
  // and not yet answered on that loop (which a request run inline there would
  // hold up). -1 elsewhere, or when the front end has no such loops.
  virtual int64_t InFlightOnThisLoop() const { return -1; }
  // Stops serving and joins its threads; connections still open are closed.
  virtual void Stop() = 0;
  // For logs: "HTTP", "gRPC".
  virtual const char* name() const = 0;
};

}  // namespace berth
