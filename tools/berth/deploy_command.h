// `berth deploy k8s|kserve|compose|job`: registered on the CLI app; the manifests are
// written by src/deploy/.
#pragma once

#include <CLI/CLI.hpp>

#include "bench_command.h"

namespace berth {

// Adds `deploy` to `parent`.
Subcommand AddDeployCommand(CLI::App& parent);

}  // namespace berth
