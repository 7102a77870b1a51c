#include "image/dockerfile.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "berth/version.h"
#include "common/file_util.h"
#include "common/json_writer.h"
#include "image/sbom.h"

namespace berth {
namespace fs = std::filesystem;

namespace {

std::string JsonString(const std::string& s) {
  std::string out;
  JsonWriter w(&out);
  w.String(s);
  return out;
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return FailedPrecondition(path + ": cannot be written");
  return Status::Ok();
}

}  // namespace

std::string DockerfileText(const Image& image, const std::vector<std::string>& layer_files) {
  const ImageMetadata& m = image.metadata;
  std::string out = "# Written by berth dockerfile: the same layers and settings as `berth build`.\n";
  out += "FROM scratch\n";
  for (size_t i = 0; i < layer_files.size(); ++i) {
    out += "# " + image.layers[i].name + "\n";
    out += "ADD " + layer_files[i] + " /\n";
  }
  out += "USER " + m.user + "\n";
  out += "EXPOSE";
  for (int p : m.exposed_ports) out += " " + std::to_string(p);
  out += "\n";
  for (const auto& e : m.env) out += "ENV " + e + "\n";
  out += "STOPSIGNAL " + m.stop_signal + "\n";
  out += "LABEL org.opencontainers.image.title=" + JsonString(m.title) +
         " org.opencontainers.image.version=" + JsonString(m.version) +
         " org.opencontainers.image.created=" + JsonString(Rfc3339(m.created));
  if (!m.revision.empty()) out += " org.opencontainers.image.revision=" + JsonString(m.revision);
  out += "\n";
  out += "WORKDIR /\n";
  out += "ENTRYPOINT [";
  for (size_t i = 0; i < m.entrypoint.size(); ++i) out += (i ? ", " : "") + JsonString(m.entrypoint[i]);
  out += "]\n";
  return out;
}

Status WriteDockerfileContext(const ImageBuildOptions& options, const std::string& context_dir) {
  std::error_code ec;
  fs::path target = fs::absolute(context_dir, ec).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "ctx/" -> "ctx"
  if (fs::exists(target, ec) && !(fs::is_directory(target, ec) && fs::is_empty(target, ec))) {
    return FailedPrecondition(context_dir + ": exists and is not an empty directory");
  }
  fs::path parent = target.parent_path();
  ASSIGN_OR_RETURN(TempDir tmp, TempDir::Create(parent.string(), "." + target.filename().string() + ".tmp-"));
  ImageBuildOptions o = options;
  o.work_dir = tmp.path();
  ASSIGN_OR_RETURN(Image image, BuildImage(o));
  // The stripped copies of berth and its plugins are in the layers now; the context needs only those.
  for (const char* scratch : {"bin", "backends"}) fs::remove_all(fs::path(tmp.path()) / scratch, ec);
  std::vector<std::string> files;
  for (const auto& l : image.layers) files.push_back(fs::path(l.path).filename().string());
  RETURN_IF_ERROR(WriteText(tmp.path() + "/Dockerfile", DockerfileText(image, files)));
  RETURN_IF_ERROR(WriteText(tmp.path() + "/sbom.spdx.json", SpdxJson(image, DpkgIndex::Load(), Version())));
  ::chmod(tmp.path().c_str(), 0755);
  if (fs::exists(target, ec)) fs::remove(target, ec);  // empty, checked above
  if (std::rename(tmp.path().c_str(), target.c_str()) != 0) {
    return ErrnoStatus(errno, context_dir + ": cannot be written");
  }
  // The TempDir now names nothing; its destructor finds nothing to remove.
  return Status::Ok();
}

}  // namespace berth
