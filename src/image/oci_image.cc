#include "image/oci_image.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <random>

#include "common/file_util.h"
#include "common/json_writer.h"

namespace berth {
namespace fs = std::filesystem;

std::string Rfc3339(int64_t epoch_seconds) {
  std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

std::string Hex(const std::string& digest) { return digest.substr(digest.find(':') + 1); }

void WriteAnnotations(JsonWriter& w, const ImageMetadata& m) {
  w.BeginObject();
  w.Key("org.opencontainers.image.created");
  w.String(Rfc3339(m.created));
  if (!m.revision.empty()) {
    w.Key("org.opencontainers.image.revision");
    w.String(m.revision);
  }
  w.Key("org.opencontainers.image.title");
  w.String(m.title);
  w.Key("org.opencontainers.image.version");
  w.String(m.version);
  w.EndObject();
}

std::string ConfigJson(const ImageMetadata& m, const std::vector<LayerBlob>& layers) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("created");
  w.String(Rfc3339(m.created));
  w.Key("architecture");
  w.String("amd64");
  w.Key("os");
  w.String("linux");
  w.Key("config");
  w.BeginObject();
  w.Key("User");
  w.String(m.user);
  w.Key("ExposedPorts");
  w.BeginObject();
  for (int p : m.exposed_ports) {
    w.Key(std::to_string(p) + "/tcp");
    w.BeginObject();
    w.EndObject();
  }
  w.EndObject();
  w.Key("Env");
  w.BeginArray();
  for (const auto& e : m.env) w.String(e);
  w.EndArray();
  w.Key("Entrypoint");
  w.BeginArray();
  for (const auto& e : m.entrypoint) w.String(e);
  w.EndArray();
  w.Key("WorkingDir");
  w.String("/");
  w.Key("Labels");
  WriteAnnotations(w, m);
  w.Key("StopSignal");
  w.String(m.stop_signal);
  w.EndObject();
  w.Key("rootfs");
  w.BeginObject();
  w.Key("type");
  w.String("layers");
  w.Key("diff_ids");
  w.BeginArray();
  for (const auto& l : layers) w.String(l.diff_id);
  w.EndArray();
  w.EndObject();
  w.Key("history");
  w.BeginArray();
  for (const auto& l : layers) {
    w.BeginObject();
    w.Key("created");
    w.String(Rfc3339(m.created));
    w.Key("created_by");
    w.String("berth build: " + l.name);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

void WriteDescriptor(JsonWriter& w, const char* media_type, const std::string& digest, uint64_t size) {
  w.Key("mediaType");
  w.String(media_type);
  w.Key("digest");
  w.String(digest);
  w.Key("size");
  w.Int(size);
}

std::string ManifestJson(const ImageMetadata& m, const std::string& config, const std::vector<LayerBlob>& layers) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("schemaVersion");
  w.Int(2);
  w.Key("mediaType");
  w.String(kOciManifestType);
  w.Key("config");
  w.BeginObject();
  WriteDescriptor(w, kOciConfigType, "sha256:" + Sha256Hex(config), config.size());
  w.EndObject();
  w.Key("layers");
  w.BeginArray();
  for (const auto& l : layers) {
    w.BeginObject();
    WriteDescriptor(w, kOciLayerGzipType, l.digest, l.size);
    w.EndObject();
  }
  w.EndArray();
  w.Key("annotations");
  WriteAnnotations(w, m);
  w.EndObject();
  return out;
}

Status AddBlobDirs(TarWriter& tar) {
  RETURN_IF_ERROR(tar.AddDirectory("blobs", 0755));
  return tar.AddDirectory("blobs/sha256", 0755);
}

// Blobs in digest order, each once (two layers may be equal).
Status AddBlobs(TarWriter& tar, const Image& image, bool with_manifest) {
  std::map<std::string, std::function<Status()>> blobs;
  blobs["blobs/sha256/" + Hex(image.config_digest)] = [&] {
    return tar.AddBytes("blobs/sha256/" + Hex(image.config_digest), 0644, image.config);
  };
  if (with_manifest) {
    blobs["blobs/sha256/" + Hex(image.manifest_digest)] = [&] {
      return tar.AddBytes("blobs/sha256/" + Hex(image.manifest_digest), 0644, image.manifest);
    };
  }
  for (const auto& l : image.layers) {
    std::string path = "blobs/sha256/" + Hex(l.digest);
    blobs[path] = [&tar, &l, path] { return tar.AddFile(path, 0644, l.path, l.size); };
  }
  for (auto& [path, add] : blobs) RETURN_IF_ERROR(add());
  return Status::Ok();
}

}  // namespace

Image AssembleImage(const ImageMetadata& metadata, std::vector<LayerBlob> layers) {
  Image image;
  image.metadata = metadata;
  image.layers = std::move(layers);
  image.config = ConfigJson(metadata, image.layers);
  image.config_digest = "sha256:" + Sha256Hex(image.config);
  image.manifest = ManifestJson(metadata, image.config, image.layers);
  image.manifest_digest = "sha256:" + Sha256Hex(image.manifest);
  return image;
}

Status WriteOciArchive(const Image& image, const std::string& path) {
  return WriteSinkAtomically(path, [&](ByteSink* sink) -> Status {
    TarWriter tar(sink, image.metadata.created);
    RETURN_IF_ERROR(AddBlobDirs(tar));
    RETURN_IF_ERROR(AddBlobs(tar, image, true));
    std::string index;
    JsonWriter w(&index);
    w.BeginObject();
    w.Key("schemaVersion");
    w.Int(2);
    w.Key("mediaType");
    w.String("application/vnd.oci.image.index.v1+json");
    w.Key("manifests");
    w.BeginArray();
    w.BeginObject();
    WriteDescriptor(w, kOciManifestType, image.manifest_digest, image.manifest.size());
    w.Key("annotations");
    w.BeginObject();
    w.Key("io.containerd.image.name");
    w.String(image.metadata.reference);
    w.Key("org.opencontainers.image.ref.name");
    w.String(image.metadata.reference);
    w.EndObject();
    w.EndObject();
    w.EndArray();
    w.EndObject();
    RETURN_IF_ERROR(tar.AddBytes("index.json", 0644, index));
    RETURN_IF_ERROR(tar.AddBytes("oci-layout", 0644, R"({"imageLayoutVersion":"1.0.0"})"));
    return tar.Finish();
  });
}

Status WriteDockerArchive(const Image& image, const std::string& path) {
  return WriteSinkAtomically(path, [&](ByteSink* sink) -> Status {
    TarWriter tar(sink, image.metadata.created);
    RETURN_IF_ERROR(AddBlobDirs(tar));
    RETURN_IF_ERROR(AddBlobs(tar, image, false));
    std::string manifest;
    JsonWriter w(&manifest);
    w.BeginArray();
    w.BeginObject();
    w.Key("Config");
    w.String("blobs/sha256/" + Hex(image.config_digest));
    w.Key("RepoTags");
    w.BeginArray();
    w.String(image.metadata.reference);
    w.EndArray();
    w.Key("Layers");
    w.BeginArray();
    for (const auto& l : image.layers) w.String("blobs/sha256/" + Hex(l.digest));
    w.EndArray();
    w.EndObject();
    w.EndArray();
    RETURN_IF_ERROR(tar.AddBytes("manifest.json", 0644, manifest));
    return tar.Finish();
  });
}

Status WriteSinkAtomically(const std::string& path, const std::function<Status(ByteSink*)>& write) {
  return WriteFileAtomically(
      path,
      [&](const std::string& tmp) -> Status {
        ASSIGN_OR_RETURN(std::unique_ptr<FileSink> sink, FileSink::Open(tmp));
        return write(sink.get());  // the writer finishes the sink (which flushes and fsyncs it)
      },
      Durability::kReplaceOnly);
}

Status CheckWritable(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return FailedPrecondition(path + ": is a directory; give a file name");
  std::string tmp = TempPathBeside(path);
  Result<std::unique_ptr<FileSink>> sink = FileSink::Open(tmp);
  if (!sink.ok()) return ErrnoStatus(errno, path + ": cannot be written");
  sink->reset();
  ::unlink(tmp.c_str());
  return Status::Ok();
}

}  // namespace berth
