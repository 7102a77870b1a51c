// `berth build` as a library call: from a model repository to an image
// whose layers go from least to most often changed (system libraries, ML
// libraries, berth and its plugins, models), written as blobs in a work
// directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "berth/status.h"
#include "image/elf_closure.h"
#include "image/layer.h"
#include "image/oci_image.h"

namespace berth {

// Where things go inside the image.
inline constexpr char kImageBinary[] = "usr/bin/berth";
inline constexpr char kImageBackendDir[] = "usr/lib/berth/backends";  // ../lib/berth/backends from the binary
inline constexpr char kImageLibraryDir[] = "usr/lib/x86_64-linux-gnu";
inline constexpr char kImageModelDir[] = "models";
inline constexpr int kImageUid = 65532;

struct ImageBuildOptions {
  std::string model_repository;
  std::string backend_dir;   // "" = DefaultBackendDir()
  std::string berth_binary;  // "" = this process (/proc/self/exe)
  std::string reference;     // -t
  std::string revision;      // "" = unknown
  int64_t source_date_epoch = 0;
  std::string work_dir;  // an existing directory for the layer blobs
  int gzip_level = 6;
  bool strip = true;      // berth and its plugins without debug info (objcopy --strip-debug)
  bool progress = false;  // per-layer progress on stderr
};

// The backends the repository's models name (sorted, unique). Every model
// must resolve (its backend plugin present, its model file found): the
// first that does not is the error, naming the model.
Result<std::vector<std::string>> RepositoryBackends(const std::string& model_repository,
                                                    const std::string& backend_dir);

// What goes into each layer (the repository's top-level dot entries, such as
// .git, are left out of /models); writes nothing but the stripped copies of berth
// and its plugins (in options.work_dir; none when work_dir is empty).
Result<std::vector<LayerSpec>> PlanImageLayers(const ImageBuildOptions& options, const LibrarySearchPath& search);

// The image config's runtime settings for `options` (entrypoint, user, ports...).
ImageMetadata MakeImageMetadata(const ImageBuildOptions& options);

// Plans and writes every layer into options.work_dir and assembles the image.
Result<Image> BuildImage(const ImageBuildOptions& options);

// SOURCE_DATE_EPOCH from the environment: 0 when unset; InvalidArgument
// when it is not a non-negative integer.
Result<int64_t> SourceDateEpochFromEnv();

// A temporary directory (mkdtemp) removed with everything in it when destroyed.
class TempDir {
 public:
  static Result<TempDir> Create(const std::string& parent, const std::string& prefix);
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace berth
