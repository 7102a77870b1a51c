// Pushes an image to a registry over the OCI distribution API: a HEAD per
// blob to skip what the registry has, a monolithic upload (POST then PUT
// ?digest=) for the rest, then the manifest PUT under the tag.
// Credentials come from the container tools' auth files; HTTPS is verified
// against the system's CA store unless the registry is marked insecure.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "berth/status.h"
#include "image/oci_image.h"

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

// user:password for `registry` from, in order, $REGISTRY_AUTH_FILE,
// $XDG_RUNTIME_DIR/containers/auth.json, $DOCKER_CONFIG/config.json or
// ~/.docker/config.json ("auths": {"<registry>": {"auth": base64}}).
// Empty when none is configured; an error for an unreadable or malformed file.
Result<std::string> RegistryCredentials(const ImageReference& ref);

struct PushOptions {
  bool insecure = false;  // plain HTTP (or HTTPS without verification when the registry speaks TLS)
  bool progress = false;
  std::string credentials;  // user:password, "" = anonymous
};

struct PushResult {
  std::string manifest_digest;
  int blobs_uploaded = 0;
  int blobs_skipped = 0;  // already in the registry
};

// Pushes `image`. Errors carry the registry's status and message.
Result<PushResult> PushImage(const Image& image, const ImageReference& ref, const PushOptions& options);

// Base64 (RFC 4648) decode/encode, for auth files and Basic auth.
std::string Base64Encode(const std::string& in);
Result<std::string> Base64Decode(const std::string& in);

}  // namespace berth
