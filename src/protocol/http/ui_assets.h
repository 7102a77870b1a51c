// The web UI's files (src/protocol/http/ui/), compiled into the binary by
// cmake/embed_files.cmake: berth serves its page with nothing fetched or read
// at run time.
#pragma once

#include <string_view>
#include <vector>

namespace berth {

struct UiAsset {
  std::string_view name;   // "index.html", "app.js", ...
  std::string_view bytes;  // the file's contents
  std::string_view etag;   // a strong ETag, quoted: its SHA-256's first 128 bits
};

const std::vector<UiAsset>& UiAssets();

}  // namespace berth
