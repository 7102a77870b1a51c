// One image layer: a sorted, deterministic tar of files taken from the host
// (or given inline), gzip-compressed into a blob whose digest names it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "berth/status.h"

namespace berth {

struct LayerEntry {
  enum class Kind { kFile, kDirectory, kSymlink };
  Kind kind = Kind::kFile;
  std::string path;     // in the image, relative: "usr/bin/berth"
  std::string source;   // kFile: the host file to copy ("" = `content`)
  std::string content;  // kFile without source: the bytes
  std::string target;   // kSymlink: the link's target
  int mode = 0644;      // permission bits (directories: 0755 unless given)
};

struct LayerSpec {
  std::string name;  // "system libraries", ... (history and progress)
  std::vector<LayerEntry> entries;
};

// A file as it went into a layer: for the SBOM.
struct LayerFileRecord {
  std::string path;    // in the image, relative
  std::string source;  // host file ("" for generated content)
  uint64_t size = 0;
  std::string sha256;  // hex
  std::string sha1;    // hex (SPDX requires it)
};

struct LayerBlob {
  std::string name;
  std::string path;     // the compressed blob on disk
  std::string digest;   // "sha256:<hex>" of the compressed bytes
  uint64_t size = 0;    // compressed bytes
  std::string diff_id;  // "sha256:<hex>" of the uncompressed tar
  uint64_t uncompressed_size = 0;
  std::vector<LayerFileRecord> files;
};

struct LayerOptions {
  int64_t mtime = 0;  // every entry's mtime (SOURCE_DATE_EPOCH)
  int gzip_level = 6;
  // Called now and then with (uncompressed bytes so far, total expected).
  std::function<void(uint64_t, uint64_t)> progress;
};

// Writes `spec` as a gzip-compressed tar to `blob_path` (which must not
// exist). Entries are sorted by path; missing parent directories are added
// (0755); a file whose source is the same host file as an earlier entry
// becomes a hard link to it. Modes are normalised (files 0755 if any execute
// bit is set on the source, else 0644) unless the entry is inline. Errors
// name the file that could not be read or the blob that could not be written.
Result<LayerBlob> WriteLayer(const LayerSpec& spec, const std::string& blob_path, const LayerOptions& options);

}  // namespace berth
