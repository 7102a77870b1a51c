// `berth batch`: registered on the CLI app; the run is berth::RunBatch.
#pragma once

#include <CLI/CLI.hpp>

#include "bench_command.h"

namespace berth {

// Adds `batch` to `parent`.
Subcommand AddBatchCommand(CLI::App& parent);

}  // namespace berth
