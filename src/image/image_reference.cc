#include "image/image_reference.h"

#include <cctype>
#include <cstring>

namespace berth {

Result<ImageReference> ParseImageReference(const std::string& reference) {
  if (reference.empty()) return InvalidArgument("image name is empty");
  if (reference.find('@') != std::string::npos) return InvalidArgument(reference + ": give a tag, not a digest");
  ImageReference r;
  std::string rest = reference;
  size_t slash = rest.find('/');
  std::string first = rest.substr(0, slash);
  bool docker_hub = first == "docker.io" || first == "index.docker.io";
  if (slash != std::string::npos && !docker_hub &&
      (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost")) {
    r.registry = first;
    rest = rest.substr(slash + 1);
  } else {
    if (docker_hub && slash != std::string::npos) rest = rest.substr(slash + 1);
    r.registry = "registry-1.docker.io";
    if (rest.find('/') == std::string::npos) rest = "library/" + rest;
  }
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos) {
    r.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  } else {
    r.tag = "latest";
  }
  r.repository = rest;
  auto valid = [](const std::string& s, const char* extra) {
    if (s.empty()) return false;
    for (char c : s) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && !std::strchr(extra, c)) return false;
    }
    return true;
  };
  if (!valid(r.repository, "._-/") || r.repository != [&] {
        std::string lower = r.repository;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return lower;
      }()) {
    return InvalidArgument(reference + ": the repository name must be lower-case letters, digits and . _ - /");
  }
  if (!valid(r.tag, "._-") || r.tag.size() > 128) {
    return InvalidArgument(reference + ": the tag must be letters, digits and . _ - (at most 128)");
  }
  r.auth_key = r.registry == "registry-1.docker.io" ? "https://index.docker.io/v1/" : r.registry;
  return r;
}

}  // namespace berth
