// `berth dockerfile`: for teams whose pipelines must run `docker build`, a
// build context holding the same layers `berth build` makes (as tar.gz
// files that ADD unpacks) and a `FROM scratch` Dockerfile with the same
// runtime settings.
#pragma once

#include <string>

#include "berth/status.h"
#include "image/image_builder.h"

namespace berth {

// The Dockerfile text for `image` whose layers are the files `layer_files`
// in the build context, in order.
std::string DockerfileText(const Image& image, const std::vector<std::string>& layer_files);

// Writes the context to `context_dir` (which must not exist, or be empty):
// layer-N.tar.gz, Dockerfile, sbom.spdx.json. Built beside it under a
// temporary name and renamed at the end. options.work_dir is ignored.
Status WriteDockerfileContext(const ImageBuildOptions& options, const std::string& context_dir);

}  // namespace berth
