#include "image/image_builder.h"

#include <spawn.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "backend/backend_registry.h"
#include "berth/version.h"
#include "common/file_util.h"
#include "repository/model_loader.h"
#include "repository/model_source.h"

namespace berth {
namespace fs = std::filesystem;

namespace {

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n";
constexpr char kGroup[] =
    "root:x:0:\n"
    "nonroot:x:65532:\n";

LayerEntry File(std::string path, std::string source) {
  LayerEntry e;
  e.path = std::move(path);
  e.source = std::move(source);
  return e;
}

LayerEntry Inline(std::string path, std::string content) {
  LayerEntry e;
  e.path = std::move(path);
  e.content = std::move(content);
  return e;
}

// Every library goes where the image's loader looks by default, under the
// name the loader asks for, as the file that name resolves to on this host
// (so Debian's alternatives give OpenBLAS, not the reference BLAS).
void AddLibraries(const LibraryClosure& closure, LayerSpec* layer) {
  for (const auto& lib : closure.libraries) {
    std::string path = lib.name.find('/') == std::string::npos ? std::string(kImageLibraryDir) + "/" + lib.name
                                                               : lib.name.substr(lib.name.find_first_not_of('/'));
    layer->entries.push_back(File(path, lib.source));
  }
}

// The repository's files under /models: directories, and regular files
// (symlinks followed, if they stay inside the repository).
Status AddModels(const std::string& repository, LayerSpec* layer) {
  std::error_code ec;
  fs::path root = fs::canonical(repository, ec);
  if (ec) return NotFound("model repository " + repository + ": " + ec.message());
  LayerEntry top;
  top.kind = LayerEntry::Kind::kDirectory;
  top.path = kImageModelDir;
  top.mode = 0755;
  layer->entries.push_back(top);
  std::set<std::string> directories;  // real paths already walked: a symlink back to one is a loop
  directories.insert(root.string());
  auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink, ec);
  if (ec) return NotFound("model repository " + repository + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return FailedPrecondition("model repository " + repository + ": " + ec.message());
    fs::path rel = it->path().lexically_relative(root);
    if (it.depth() == 0 && rel.string()[0] == '.') {  // .git and the like: not models, never served
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    std::string image_path = std::string(kImageModelDir) + "/" + rel.generic_string();
    fs::path real = fs::canonical(it->path(), ec);
    if (ec) return NotFound(it->path().string() + ": " + ec.message());
    auto inside = real.lexically_relative(root);
    if (inside.empty() || *inside.begin() == "..") {
      return FailedPrecondition(it->path().string() + ": resolves outside the model repository; refused");
    }
    if (fs::is_directory(real, ec)) {
      if (!directories.insert(real.string()).second) {
        return FailedPrecondition(it->path().string() + ": a symlink to a directory already in the repository (" +
                                  real.string() + "); refused, it would loop or copy the models twice");
      }
      LayerEntry d;
      d.kind = LayerEntry::Kind::kDirectory;
      d.path = image_path;
      d.mode = 0755;
      layer->entries.push_back(d);
    } else if (fs::is_regular_file(real, ec)) {
      layer->entries.push_back(File(image_path, real.string()));
    }
  }
  return Status::Ok();
}

// A copy of `source` without debug sections (objcopy --strip-debug, which
// is deterministic), in `dir`; the source itself when objcopy is missing.
Result<std::string> StripDebugInfo(const std::string& source, const std::string& dir) {
  std::string objcopy;
  for (const char* candidate : {"/usr/bin/objcopy", "/bin/objcopy", "/usr/local/bin/objcopy"}) {
    if (::access(candidate, X_OK) == 0) {
      objcopy = candidate;
      break;
    }
  }
  if (objcopy.empty()) {
    spdlog::warn("objcopy (binutils) not found: {} goes into the image with its debug info", source);
    return source;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::string out = dir + "/" + fs::path(source).filename().string();
  pid_t pid = 0;
  const char* argv[] = {objcopy.c_str(), "--strip-debug", source.c_str(), out.c_str(), nullptr};
  if (posix_spawn(&pid, objcopy.c_str(), nullptr, nullptr, const_cast<char* const*>(argv), environ) != 0) {
    return ErrnoStatus(errno, "cannot run " + objcopy + "");
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return FailedPrecondition(objcopy + " --strip-debug " + source + " failed");
  }
  // objcopy creates the copy under the umask; the image gets the original's mode.
  struct stat st;
  if (::stat(source.c_str(), &st) != 0 || ::chmod(out.c_str(), st.st_mode & 07777) != 0) {
    return ErrnoStatus(errno, "cannot give " + out + " the mode of " + source + "");
  }
  return out;
}

std::string FormatBytes(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  return buf;
}

}  // namespace

Result<std::vector<std::string>> RepositoryBackends(const std::string& model_repository,
                                                    const std::string& backend_dir) {
  std::error_code ec;
  if (!fs::is_directory(model_repository, ec)) {
    return NotFound("model repository " + model_repository + " is not a readable directory");
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(model_repository, ec)) {
    std::string name = e.path().filename().string();
    if (name[0] != '.' && IsValidModelName(name) && e.is_directory(ec)) names.push_back(name);
  }
  if (ec) return FailedPrecondition("model repository " + model_repository + ": " + ec.message());
  if (names.empty()) return NotFound("model repository " + model_repository + " holds no model directories");
  std::sort(names.begin(), names.end());
  BackendRegistry registry(backend_dir);
  std::set<std::string> backends;
  for (const auto& name : names) {
    Result<ModelSource> source = ReadModelSource(model_repository + "/" + name, name);
    if (!source.ok()) return source.status().WithContext("model '" + name + "'");
    // Pipelines (their steps are this repository's models, or remote) and transforms need no plugin.
    if (source->config.kind != kBackendModelKind) continue;
    Result<ResolvedModel> m = ResolveModel(*source, -1, &registry);
    if (!m.ok()) return m.status().WithContext("model '" + name + "'");
    backends.insert(m->config.backend);
  }
  return std::vector<std::string>(backends.begin(), backends.end());
}

Result<std::vector<LayerSpec>> PlanImageLayers(const ImageBuildOptions& o, const LibrarySearchPath& search) {
  std::string backend_dir = BackendRegistry(o.backend_dir).dir();
  std::error_code ec;
  std::string binary = fs::canonical(o.berth_binary.empty() ? "/proc/self/exe" : o.berth_binary, ec).string();
  if (ec) return NotFound("the berth binary cannot be found: " + ec.message());
  ASSIGN_OR_RETURN(std::vector<std::string> backends, RepositoryBackends(o.model_repository, backend_dir));
  BackendRegistry registry(backend_dir);
  std::vector<std::string> plugins;
  for (const auto& b : backends) plugins.push_back(registry.PluginPath(b));

  LayerSpec system{"system libraries", {}};
  Result<LibraryClosure> base = ComputeLibraryClosure({binary}, search);
  if (!base.ok()) return base.status().WithContext("libraries of " + binary);
  if (base->interpreter.empty()) return FailedPrecondition(binary + ": has no ELF interpreter (PT_INTERP)");
  system.entries.push_back(File(base->interpreter.substr(1), base->interpreter_source));
  AddLibraries(*base, &system);
  system.entries.push_back(Inline("etc/passwd", kPasswd));
  system.entries.push_back(Inline("etc/group", kGroup));
  LayerEntry tmp;
  tmp.kind = LayerEntry::Kind::kDirectory;
  tmp.path = "tmp";
  tmp.mode = 01777;
  system.entries.push_back(tmp);

  std::set<std::string> provided;
  for (const auto& lib : base->libraries) provided.insert(lib.name);
  LayerSpec ml{"ML libraries", {}};
  Result<LibraryClosure> extra = ComputeLibraryClosure(plugins, search, provided);
  if (!extra.ok()) return extra.status().WithContext("libraries of the backend plugins");
  AddLibraries(*extra, &ml);

  // Debug info is for the build machine: stripped, berth is a few MB instead of ~90.
  auto shipped = [&](const std::string& file, const std::string& dir) -> Result<std::string> {
    if (!o.strip || o.work_dir.empty()) return file;
    return StripDebugInfo(file, o.work_dir + "/" + dir);
  };
  LayerSpec app{"berth and its backend plugins", {}};
  {
    ASSIGN_OR_RETURN(std::string shipped_binary, shipped(binary, "bin"));
    app.entries.push_back(File(kImageBinary, shipped_binary));
  }
  for (size_t i = 0; i < backends.size(); ++i) {
    ASSIGN_OR_RETURN(std::string plugin, shipped(fs::canonical(plugins[i]).string(), "backends"));
    app.entries.push_back(File(std::string(kImageBackendDir) + "/" + fs::path(plugins[i]).filename().string(), plugin));
  }

  LayerSpec models{"models", {}};
  RETURN_IF_ERROR(AddModels(o.model_repository, &models));

  std::vector<LayerSpec> layers;
  for (auto* l : {&system, &ml, &app, &models}) {
    if (!l->entries.empty()) layers.push_back(std::move(*l));  // identity-only images have no ML libraries
  }
  return layers;
}

ImageMetadata MakeImageMetadata(const ImageBuildOptions& o) {
  ImageMetadata m;
  m.reference = o.reference;
  // "registry:5000/team/name:tag" -> title "name", version "tag".
  std::string ref = o.reference;
  size_t slash = ref.rfind('/');
  size_t colon = ref.rfind(':');
  std::string repo = ref;
  m.version = "latest";
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    repo = ref.substr(0, colon);
    m.version = ref.substr(colon + 1);
  } else {
    m.reference += ":latest";  // docker load refuses a RepoTags entry without a tag
  }
  m.title = repo.substr(repo.rfind('/') == std::string::npos ? 0 : repo.rfind('/') + 1);
  m.revision = o.revision;
  m.created = o.source_date_epoch;
  m.entrypoint = {"/" + std::string(kImageBinary), "serve", "--model-repository", "/" + std::string(kImageModelDir)};
  m.env = {"PATH=/usr/bin"};
  m.user = std::to_string(kImageUid) + ":" + std::to_string(kImageUid);
  m.exposed_ports = {8000, 8001, 8002};  // HTTP, gRPC, metrics
  m.stop_signal = "SIGTERM";
  return m;
}

Result<Image> BuildImage(const ImageBuildOptions& o) {
  ASSIGN_OR_RETURN(std::vector<LayerSpec> specs, PlanImageLayers(o, LibrarySearchPath::System()));
  std::vector<LayerBlob> blobs;
  for (size_t i = 0; i < specs.size(); ++i) {
    LayerOptions lo;
    lo.mtime = o.source_date_epoch;
    lo.gzip_level = o.gzip_level;
    auto start = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    std::string label = "layer " + std::to_string(i + 1) + "/" + std::to_string(specs.size()) + " " + specs[i].name;
    if (o.progress) {
      lo.progress = [&](uint64_t done, uint64_t total) {
        double s = std::max(seconds(), 1e-3);
        std::fprintf(stderr, "\r%s: %s / %s  %.1f MB/s   ", label.c_str(), FormatBytes(done).c_str(),
                     FormatBytes(total).c_str(), done / s / 1e6);
        std::fflush(stderr);
      };
    }
    std::string path = o.work_dir + "/layer-" + std::to_string(i + 1) + ".tar.gz";
    Result<LayerBlob> blob = WriteLayer(specs[i], path, lo);
    if (!blob.ok()) {
      if (o.progress) std::fprintf(stderr, "\n");
      return blob.status().WithContext(label);
    }
    if (o.progress) {
      std::fprintf(stderr, "\r%s: %s -> %s gzip, %s, %.1f s        \n", label.c_str(),
                   FormatBytes(blob->uncompressed_size).c_str(), FormatBytes(blob->size).c_str(),
                   blob->digest.substr(0, 19).c_str(), seconds());
    }
    blobs.push_back(std::move(blob).value());
  }
  return AssembleImage(MakeImageMetadata(o), std::move(blobs));
}

Result<int64_t> SourceDateEpochFromEnv() {
  const char* v = std::getenv("SOURCE_DATE_EPOCH");
  if (v == nullptr || *v == '\0') return int64_t{0};
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(v, &end, 10);
  if (errno != 0 || *end != '\0' || n < 0) {
    return InvalidArgument(std::string("SOURCE_DATE_EPOCH='") + v + "': expected seconds since 1970 (an integer >= 0)");
  }
  return static_cast<int64_t>(n);
}

Result<TempDir> TempDir::Create(const std::string& parent, const std::string& prefix) {
  std::string pattern = (parent.empty() ? std::string(".") : parent) + "/" + prefix + "XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    return FailedPrecondition("cannot create a work directory in " + (parent.empty() ? "." : parent) + ": " +
                              std::strerror(errno));
  }
  return TempDir(pattern);
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace berth
