#include "server/access_policy.h"

#include "common/file_util.h"

namespace berth {

Result<std::string> ReadTokenFile(const std::string& path) {
  Result<std::string> read = ReadRegularFile(path, 64 << 10);
  if (!read.ok()) return Status(read.status().code(), "token file: " + read.status().message());
  std::string t = std::move(read).value();
  auto first = t.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return InvalidArgument("token file " + path + " is empty");
  t = t.substr(first, t.find_last_not_of(" \t\r\n") - first + 1);
  return t;
}

bool BearerMatches(std::string_view authorization, const std::string& token) {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return false;
    }
  }
  std::string_view given = authorization.substr(kScheme.size());
  // Constant time over the expected token: every byte is compared whatever the length or the first mismatch.
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < token.size(); ++i) {
    unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(token[i]);
  }
  return diff == 0;
}

}  // namespace berth

namespace berth {

Status AccessPolicy::CheckInference(std::string_view authorization) const {
  if (options_.auth_token.empty() || BearerMatches(authorization, options_.auth_token)) return Status::Ok();
  return Status(StatusCode::kUnauthenticated, "missing or wrong bearer token");
}

Status AccessPolicy::CheckModelControl(std::string_view authorization) const {
  if (options_.admin_token.empty()) {
    return Status(StatusCode::kPermissionDenied,
                  "model control is off: start berth with --admin-token-file (and --model-control-mode explicit)");
  }
  if (!BearerMatches(authorization, options_.admin_token)) {
    return Status(StatusCode::kUnauthenticated, "missing or wrong admin bearer token");
  }
  if (!options_.explicit_model_control) {
    return Status(StatusCode::kPermissionDenied, "model control needs --model-control-mode explicit");
  }
  return Status::Ok();
}

}  // namespace berth
