// Who may do what: bearer tokens for inference and for model control, the
// same for every front end (HTTP's Authorization header, gRPC's
// "authorization" metadata). Tokens are read from files and never logged.
#pragma once

#include <string>
#include <string_view>

#include "berth/status.h"

namespace berth {

// Reads a token file: its contents with surrounding whitespace removed.
// Error if unreadable, not a regular file, or empty.
Result<std::string> ReadTokenFile(const std::string& path);

// True if `authorization` is "Bearer <token>" with exactly `token`. Compares
// in time independent of where the first difference is.
bool BearerMatches(std::string_view authorization, const std::string& token);

class AccessPolicy {
 public:
  struct Options {
    std::string auth_token;               // required for everything but health; "" = open
    std::string admin_token;              // required for load/unload; "" = model control refused
    bool explicit_model_control = false;  // --model-control-mode explicit
  };
  AccessPolicy() = default;
  explicit AccessPolicy(Options options) : options_(std::move(options)) {}

  // Ok, or Unauthenticated (answer with a Bearer challenge). `authorization`
  // is the credential the request carried ("" for none).
  Status CheckInference(std::string_view authorization) const;
  // Ok, PermissionDenied (model control is off) or Unauthenticated.
  Status CheckModelControl(std::string_view authorization) const;

  // Whether inference needs a bearer token (what the OpenAPI document declares).
  bool requires_inference_token() const { return !options_.auth_token.empty(); }

 private:
  Options options_;
};

}  // namespace berth
