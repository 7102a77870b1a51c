#include "image/layer.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "common/file_util.h"
#include "image/tar_writer.h"

namespace berth {

Result<LayerBlob> WriteLayer(const LayerSpec& spec, const std::string& blob_path, const LayerOptions& options) {
  // Sort, add parents, and refuse duplicates: the tar must not depend on the order entries were found in.
  std::map<std::string, LayerEntry> entries;
  for (const LayerEntry& e : spec.entries) {
    if (e.path.empty() || e.path[0] == '/' || e.path.back() == '/') {
      return InvalidArgument("layer '" + spec.name + "': bad path '" + e.path + "'");
    }
    auto [it, inserted] = entries.emplace(e.path, e);
    if (!inserted) {
      if (e.kind != LayerEntry::Kind::kDirectory || it->second.kind != LayerEntry::Kind::kDirectory) {
        return InvalidArgument("layer '" + spec.name + "': two entries for " + e.path);
      }
      it->second = e;  // an explicit directory wins over one added as a parent
    }
    for (size_t slash = e.path.rfind('/'); slash != std::string::npos && slash > 0;
         slash = e.path.rfind('/', slash - 1)) {
      LayerEntry dir;
      dir.kind = LayerEntry::Kind::kDirectory;
      dir.path = e.path.substr(0, slash);
      dir.mode = 0755;
      entries.emplace(dir.path, dir);
    }
  }
  // Sizes up front: for progress, and so that a file that cannot be read fails before writing starts.
  std::map<std::string, uint64_t> sizes;
  std::map<std::string, int> modes;
  uint64_t total = 0;
  for (const auto& [path, e] : entries) {
    if (e.kind != LayerEntry::Kind::kFile || e.source.empty()) continue;
    struct stat st;
    if (::stat(e.source.c_str(), &st) != 0) {
      return ErrnoStatus(errno, e.source + ": cannot be read");
    }
    if (!S_ISREG(st.st_mode)) return FailedPrecondition(e.source + ": not a regular file");
    if (::access(e.source.c_str(), R_OK) != 0) {
      return ErrnoStatus(errno, e.source + ": cannot be read");
    }
    sizes[path] = static_cast<uint64_t>(st.st_size);
    modes[path] = (st.st_mode & 0111) ? 0755 : 0644;
    total += static_cast<uint64_t>(st.st_size);
  }

  ASSIGN_OR_RETURN(std::unique_ptr<FileSink> file, FileSink::Open(blob_path));
  GzipSink gzip(file.get(), options.gzip_level);
  TarWriter tar(&gzip, options.mtime);
  LayerBlob blob;
  blob.name = spec.name;
  blob.path = blob_path;
  std::map<std::string, std::string> first_path_of_source;  // host file -> image path (hard links)
  uint64_t done = 0, reported = 0;
  for (const auto& [path, e] : entries) {
    switch (e.kind) {
      case LayerEntry::Kind::kDirectory: RETURN_IF_ERROR(tar.AddDirectory(path, e.mode)); break;
      case LayerEntry::Kind::kSymlink: RETURN_IF_ERROR(tar.AddSymlink(path, e.target)); break;
      case LayerEntry::Kind::kFile: {
        LayerFileRecord rec;
        rec.path = path;
        rec.source = e.source;
        Hasher sha256, sha1(EVP_sha1());
        auto on_data = [&](const char* data, size_t n) {
          sha256.Update(data, n);
          sha1.Update(data, n);
          done += n;
          if (options.progress && done - reported >= (8u << 20)) {
            reported = done;
            options.progress(done, total);
          }
        };
        if (e.source.empty()) {
          RETURN_IF_ERROR(tar.AddBytes(path, e.mode, e.content));
          on_data(e.content.data(), e.content.size());
          rec.size = e.content.size();
        } else if (auto it = first_path_of_source.find(e.source); it != first_path_of_source.end()) {
          RETURN_IF_ERROR(tar.AddHardlink(path, it->second, modes[it->second]));
          for (const auto& r : blob.files) {
            if (r.path == it->second) rec = LayerFileRecord{path, e.source, r.size, r.sha256, r.sha1};
          }
          blob.files.push_back(rec);
          continue;
        } else {
          rec.size = sizes[path];
          RETURN_IF_ERROR(tar.AddFile(path, modes[path], e.source, rec.size, on_data));
          first_path_of_source.emplace(e.source, path);
        }
        rec.sha256 = sha256.HexDigest();
        rec.sha1 = sha1.HexDigest();
        blob.files.push_back(std::move(rec));
        break;
      }
    }
  }
  RETURN_IF_ERROR(tar.Finish());
  if (options.progress) options.progress(total, total);
  blob.digest = file->digest();
  blob.size = file->bytes();
  blob.diff_id = gzip.digest();
  blob.uncompressed_size = gzip.bytes();
  return blob;
}

}  // namespace berth
