// An OCI image from its layers: the image config, the manifest, and the two
// archive forms (OCI image layout, docker-archive) written atomically.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "berth/status.h"
#include "image/layer.h"
#include "image/tar_writer.h"

namespace berth {

inline constexpr char kOciManifestType[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kOciConfigType[] = "application/vnd.oci.image.config.v1+json";
inline constexpr char kOciLayerGzipType[] = "application/vnd.oci.image.layer.v1.tar+gzip";

struct ImageMetadata {
  std::string reference;  // as given to -t: "[registry/]name:tag"
  std::string title;      // org.opencontainers.image.title
  std::string version;    // org.opencontainers.image.version
  std::string revision;   // org.opencontainers.image.revision ("" = unknown, left out)
  int64_t created = 0;    // SOURCE_DATE_EPOCH
  std::vector<std::string> entrypoint;
  std::vector<std::string> env;
  std::string user;
  std::vector<int> exposed_ports;
  std::string stop_signal;
};

struct Image {
  ImageMetadata metadata;
  std::vector<LayerBlob> layers;
  std::string config;  // JSON
  std::string config_digest;
  std::string manifest;  // JSON
  std::string manifest_digest;
};

// "1970-01-01T00:00:00Z"
std::string Rfc3339(int64_t epoch_seconds);

// Builds config and manifest (and their digests) for `layers`.
Image AssembleImage(const ImageMetadata& metadata, std::vector<LayerBlob> layers);

// The OCI image layout as a tar: oci-layout, index.json (the manifest
// annotated with its reference), blobs/sha256/*. Read by skopeo
// (oci-archive:), umoci (after unpacking the tar) and podman load.
Status WriteOciArchive(const Image& image, const std::string& path);

// A docker-archive (docker save's format): manifest.json with RepoTags, the
// config and the gzip layers. Read by docker load and podman load.
Status WriteDockerArchive(const Image& image, const std::string& path);

// Writes `path` through a temporary file beside it, renamed over `path`
// only when `write` succeeded: never a half-written output.
// (common/file_util.h's WriteFileAtomically, for writers of a ByteSink.)
Status WriteSinkAtomically(const std::string& path, const std::function<Status(ByteSink*)>& write);

// Fails early, with the reason, if a file cannot be created in `path`'s directory.
Status CheckWritable(const std::string& path);

}  // namespace berth
