#include "repository/model_source.h"

#include <algorithm>
#include <filesystem>

#include "common/file_util.h"

namespace fs = std::filesystem;

namespace berth {
namespace {

// model.yaml is small; a larger one is refused before it is read.
constexpr uint64_t kMaxModelYamlBytes = 1 << 20;
// A labels file is small; a larger one is refused before it is read.
constexpr uint64_t kMaxLabelsBytes = 16 << 20;

// The model.yaml of `model_dir`, or nullopt when there is none. It must
// resolve inside the model directory (a link out of the repository is
// refused, never opened) and be a regular file of bounded size (a FIFO or a
// device is refused unopened).
Result<std::optional<std::string>> ReadModelYaml(const fs::path& model_dir) {
  fs::path path = model_dir / "model.yaml";
  std::error_code ec;
  fs::file_status link = fs::symlink_status(path, ec);
  if (link.type() == fs::file_type::not_found) return std::optional<std::string>();
  if (ec) return FailedPrecondition(path.string() + ": cannot be read: " + ec.message());
  if (!StaysInside(model_dir.string(), path.string())) {
    return FailedPrecondition(path.string() + ": resolves outside the model directory; refused");
  }
  ASSIGN_OR_RETURN(std::string text, ReadRegularFile(path.string(), kMaxModelYamlBytes));
  return std::optional<std::string>(std::move(text));
}

// Names, sizes and modification times of every file under `dir`: changes when the version's files change.
std::string Fingerprint(const fs::path& dir) {
  std::vector<std::string> parts;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    auto mtime = fs::last_write_time(it->path(), ec).time_since_epoch().count();
    parts.push_back(it->path().lexically_relative(dir).string() + ":" + std::to_string(it->file_size(ec)) + ":" +
                    std::to_string(mtime));
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const auto& p : parts) out += p + "\n";
  return out;
}

}  // namespace

bool IsValidModelName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

bool StaysInside(const std::string& root, const std::string& path) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(root, ec);
  if (ec) return false;
  fs::path p = fs::weakly_canonical(path, ec);
  if (ec) return false;
  auto [ri, pi] = std::mismatch(r.begin(), r.end(), p.begin(), p.end());
  return ri == r.end();
}

std::vector<int64_t> ModelSource::version_numbers() const {
  std::vector<int64_t> out;
  for (const auto& [v, fingerprint] : versions) out.push_back(v);
  return out;
}

Status ReadOutputLabels(const std::string& model_dir_text, const std::string& yaml_path, ModelConfig* config) {
  for (size_t i = 0; i < config->outputs.size(); ++i) {
    TensorSpec& out = config->outputs[i];
    if (out.labels_file.empty()) continue;
    const std::string key = yaml_path + ": outputs[" + std::to_string(i) + "].labels: '" + out.labels_file + "'";
    const fs::path model_dir(model_dir_text);
    fs::path path = model_dir / out.labels_file;
    if (!StaysInside(model_dir.string(), path.string())) {
      return FailedPrecondition(key + " resolves outside the model directory; refused");
    }
    Result<std::string> text = ReadRegularFile(path.string(), kMaxLabelsBytes);
    if (!text.ok()) return FailedPrecondition(key + ": " + text.status().message());
    out.labels.clear();
    size_t start = 0;
    while (start < text->size()) {
      size_t end = text->find('\n', start);
      if (end == std::string::npos) end = text->size();
      std::string label = text->substr(start, end - start);
      if (!label.empty() && label.back() == '\r') label.pop_back();
      out.labels.push_back(std::move(label));
      start = end + 1;
    }
    if (out.labels.empty()) return FailedPrecondition(key + ": the file is empty (one label per line expected)");
    if (out.dtype == DataType::kBytes) return FailedPrecondition(key + ": a BYTES output has no classes to label");
    if (out.shape.size() > 1) return FailedPrecondition(key + ": labels need an output of one dimension (the classes)");
    if (!out.shape.empty() && out.shape.back() > 0 && static_cast<int64_t>(out.labels.size()) != out.shape.back()) {
      return FailedPrecondition(key + ": " + std::to_string(out.labels.size()) + " labels for " +
                                std::to_string(out.shape.back()) + " classes (the output's last dimension)");
    }
  }
  return Status::Ok();
}

Result<ModelSource> ReadModelSource(const std::string& dir, const std::string& name) {
  ModelSource source;
  source.name = name;
  source.dir = dir;
  ASSIGN_OR_RETURN(source.yaml, ReadModelYaml(dir));
  if (source.yaml) {
    ASSIGN_OR_RETURN(source.config, ParsePartialModelConfig(*source.yaml, name, source.yaml_path()));
  } else {
    source.config.name = name;
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.empty() || n.size() > 18 || n[0] == '0' ||
        !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    std::error_code entry_ec;
    if (!e.is_directory(entry_ec) || !StaysInside(dir, e.path().string())) continue;
    source.versions[std::stoll(n)] = source.yaml.value_or("") + "\n" + Fingerprint(e.path());
  }
  if (ec) return FailedPrecondition(dir + ": cannot be listed: " + ec.message());
  return source;
}

std::vector<int64_t> SelectVersions(const VersionPolicy& p, const std::vector<int64_t>& on_disk) {
  switch (p.kind) {
    case VersionPolicy::Kind::kAll: return on_disk;
    case VersionPolicy::Kind::kLatest: {
      size_t n = std::min(on_disk.size(), static_cast<size_t>(p.latest));
      return std::vector<int64_t>(on_disk.end() - static_cast<std::ptrdiff_t>(n), on_disk.end());
    }
    case VersionPolicy::Kind::kSpecific: {
      std::vector<int64_t> out;
      for (int64_t v : p.specific) {
        if (std::binary_search(on_disk.begin(), on_disk.end(), v)) out.push_back(v);
      }
      std::sort(out.begin(), out.end());
      return out;
    }
  }
  return {};
}

}  // namespace berth
