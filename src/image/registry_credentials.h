// Registry credentials from the container tools' auth files.
#pragma once

#include <string>

#include "berth/status.h"
#include "common/base64.h"
#include "image/image_reference.h"

namespace berth {

// user:password for `registry` from, in order, $REGISTRY_AUTH_FILE,
// $XDG_RUNTIME_DIR/containers/auth.json, $DOCKER_CONFIG/config.json or
// ~/.docker/config.json ("auths": {"<registry>": {"auth": base64}}).
// Empty when none is configured; an error for an unreadable or malformed file.
Result<std::string> RegistryCredentials(const ImageReference& ref);

}  // namespace berth
