// `berth build` and `berth dockerfile`: registered on the CLI app; the
// commands' bodies are in the image library (src/image/).
#pragma once

#include <CLI/CLI.hpp>

#include "bench_command.h"

namespace berth {

// Adds `build` to `parent`.
Subcommand AddBuildCommand(CLI::App& parent);

// Adds `dockerfile` to `parent`.
Subcommand AddDockerfileCommand(CLI::App& parent);

}  // namespace berth
