// `berth bench`: registered on the CLI app; the command's body is in the loadgen library.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace berth {

struct Subcommand {
  CLI::App* app = nullptr;
  std::function<int()> run;  // exit code; call only when app->parsed()
};

// Adds `bench` to `parent`.
Subcommand AddBenchCommand(CLI::App& parent);

}  // namespace berth
