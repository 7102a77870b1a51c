// A plugin that claims a backend API major version newer than the server's.
#include "berth/backend_api.h"

extern "C" __attribute__((visibility("default"))) const berth::BackendPlugin* berth_backend_plugin() {
  static const berth::BackendPlugin plugin{berth::kBackendApiMajor + 1, 0, "future", "",
                                           []() -> berth::Backend* { return nullptr; }};
  return &plugin;
}
