// `berth probe`: a health check for images that have no shell and no curl
// (compose and Docker healthchecks, `podman healthcheck run`).
#pragma once

#include <CLI/CLI.hpp>

#include "bench_command.h"

namespace berth {

// Adds `probe` to `parent`.
Subcommand AddProbeCommand(CLI::App& parent);

}  // namespace berth
