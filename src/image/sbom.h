// The software bill of materials of an image: every file, with the Debian
// package (and version) it came from, as SPDX 2.3 JSON.
#pragma once

#include <map>
#include <string>

#include "image/oci_image.h"

namespace berth {

struct DpkgPackage {
  std::string name;
  std::string version;
  std::string architecture;
};

// Which installed Debian package owns which file, from /var/lib/dpkg.
class DpkgIndex {
 public:
  // Reads <dpkg_dir>/info/*.list and <dpkg_dir>/status. A missing
  // directory gives an empty index (not a Debian system): files are then
  // listed without a package.
  static DpkgIndex Load(const std::string& dpkg_dir = "/var/lib/dpkg");

  // The package that installed `host_path` (merged /usr aware: dpkg lists
  // /lib/x86_64-linux-gnu/libc.so.6, the file is /usr/lib/...), or nullptr.
  const DpkgPackage* Find(const std::string& host_path) const;

  size_t size() const { return owner_.size(); }

 private:
  std::map<std::string, std::string> owner_;  // normalised path -> package name
  std::map<std::string, DpkgPackage> packages_;
};

// "/lib/x" -> "/usr/lib/x" (and /bin, /sbin, /lib32, /lib64, /libx32).
std::string NormalizeMergedUsr(const std::string& path);

// SPDX 2.3 JSON describing `image`: one package for the image, one per
// Debian package with a CONTAINS relationship to each of its files, every
// file with SHA1 and SHA256. Deterministic for equal images.
std::string SpdxJson(const Image& image, const DpkgIndex& dpkg, const std::string& tool_version);

}  // namespace berth
