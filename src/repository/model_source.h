// A model directory as one read of the filesystem finds it: model.yaml's
// text and parsed config, the version directories on disk, and a
// fingerprint of each version's files. Loading works from this snapshot, so
// model.yaml is opened and parsed once per load.
//
// Every file is held to the repository's rules: nothing resolves outside
// the model directory (symlinks included), only regular files of bounded
// size are read, and errors name files, never quote them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/status.h"
#include "common/model_config.h"

namespace berth {

// True for names we accept as model directory names: [A-Za-z0-9_.-]+, not "." or "..".
bool IsValidModelName(std::string_view name);

// True if `path` resolves (symlinks followed) to `root` or a location inside it.
bool StaysInside(const std::string& root, const std::string& path);

struct ModelSource {
  std::string name;  // the model's name
  std::string dir;   // its directory
  // model.yaml's text; nullopt when there is none (the backend follows from
  // the model file's name and infers the signature; the defaults apply).
  std::optional<std::string> yaml;
  ModelConfig config;  // parsed from yaml (its signature may be left to the backend)
  // Integer version directories on disk, ascending, with a fingerprint of
  // each (model.yaml and the names, sizes and times of the version's files):
  // a version whose fingerprint is unchanged needs no reload.
  std::map<int64_t, std::string> versions;

  std::string yaml_path() const { return dir + "/model.yaml"; }
  std::string version_dir(int64_t v) const { return dir + "/" + std::to_string(v); }
  std::vector<int64_t> version_numbers() const;
};

// Reads `dir` once. An error for a model.yaml that is not allowed (see
// above) or does not parse, or a directory that cannot be listed.
// The `labels:` files of `config`'s outputs (classification extension):
// inside the model directory, regular, at most 16 MiB, one label per line
// (a final newline, and CR before LF, are not part of a label). Read when a
// version loads, not on every poll. Errors name model.yaml's key, never the
// file's text.
Status ReadOutputLabels(const std::string& model_dir, const std::string& yaml_path, ModelConfig* config);

Result<ModelSource> ReadModelSource(const std::string& dir, const std::string& name);

// The versions `policy` selects among `on_disk` (ascending), ascending.
std::vector<int64_t> SelectVersions(const VersionPolicy& policy, const std::vector<int64_t>& on_disk);

}  // namespace berth
