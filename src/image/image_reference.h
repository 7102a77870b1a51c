// Image references as docker and podman spell them.
#pragma once

#include <string>

#include "berth/status.h"

namespace berth {

// "localhost:5000/team/app:1" -> registry "localhost:5000", repository "team/app", tag "1".
// Docker Hub names ("app:1", "team/app") map to registry-1.docker.io and "library/app".
struct ImageReference {
  std::string registry;  // host[:port]
  std::string repository;
  std::string tag;
  std::string auth_key;  // the key in auth files ("docker.io" names use "https://index.docker.io/v1/")
};
Result<ImageReference> ParseImageReference(const std::string& reference);

}  // namespace berth
