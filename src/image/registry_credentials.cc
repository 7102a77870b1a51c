#include "image/registry_credentials.h"

#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "common/file_util.h"

namespace berth {
namespace fs = std::filesystem;

Result<std::string> RegistryCredentials(const ImageReference& ref) {
  std::vector<std::string> files;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  if (!env("REGISTRY_AUTH_FILE").empty()) files.push_back(env("REGISTRY_AUTH_FILE"));
  if (!env("XDG_RUNTIME_DIR").empty()) files.push_back(env("XDG_RUNTIME_DIR") + "/containers/auth.json");
  if (!env("DOCKER_CONFIG").empty()) {
    files.push_back(env("DOCKER_CONFIG") + "/config.json");
  } else if (!env("HOME").empty()) {
    files.push_back(env("HOME") + "/.docker/config.json");
  }
  for (const auto& file : files) {
    std::error_code ec;
    if (!fs::exists(file, ec)) continue;
    ASSIGN_OR_RETURN(std::string text, ReadRegularFile(file, 1 << 20));
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(text).get(doc)) return InvalidArgument(file + ": not valid JSON");
    simdjson::dom::object auths;
    if (doc["auths"].get(auths)) continue;
    for (const std::string& key : {ref.auth_key, ref.registry, "https://" + ref.registry, "http://" + ref.registry}) {
      simdjson::dom::element entry;
      if (auths[key].get(entry)) continue;
      std::string_view auth;
      if (!entry["auth"].get(auth)) {
        Result<std::string> decoded = Base64Decode(std::string(auth));
        if (!decoded.ok() || decoded->find(':') == std::string::npos) {
          return InvalidArgument(file + ": auths." + key + ".auth: expected base64 of user:password");
        }
        return *decoded;
      }
      std::string_view user, password;
      if (!entry["username"].get(user) && !entry["password"].get(password)) {
        return std::string(user) + ":" + std::string(password);
      }
    }
  }
  return std::string();
}

}  // namespace berth
