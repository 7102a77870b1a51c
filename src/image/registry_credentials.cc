#include "image/registry_credentials.h"

#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "common/file_util.h"

namespace berth {
namespace fs = std::filesystem;

std::string Base64Encode(const std::string& in) {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out.push_back(kChars[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {kChars[(v >> 18) & 63], kChars[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {kChars[(v >> 18) & 63], kChars[(v >> 12) & 63], kChars[(v >> 6) & 63], '='};
  }
  return out;
}

Result<std::string> Base64Decode(const std::string& in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+' || c == '-')
      v = 62;
    else if (c == '/' || c == '_')
      v = 63;
    else if (c == '=' || c == '\n' || c == '\r')
      continue;
    else
      return InvalidArgument("not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

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
