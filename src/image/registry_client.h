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
#include "image/image_reference.h"
#include "image/oci_image.h"
#include "image/registry_credentials.h"

namespace berth {

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

}  // namespace berth
