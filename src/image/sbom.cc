#include "image/sbom.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "common/json_writer.h"

namespace berth {

std::string NormalizeMergedUsr(const std::string& path) {
  for (const char* top : {"/lib/", "/lib32/", "/lib64/", "/libx32/", "/bin/", "/sbin/"}) {
    if (path.rfind(top, 0) == 0) return "/usr" + path;
  }
  return path;
}

DpkgIndex DpkgIndex::Load(const std::string& dpkg_dir) {
  DpkgIndex index;
  std::string info_dir = dpkg_dir + "/info";
  if (DIR* d = ::opendir(info_dir.c_str())) {
    std::vector<std::string> lists;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.size() > 5 && name.compare(name.size() - 5, 5, ".list") == 0) lists.push_back(name);
    }
    ::closedir(d);
    std::sort(lists.begin(), lists.end());  // a file listed twice (diversions) goes to the first package
    for (const auto& list : lists) {
      std::string package = list.substr(0, list.size() - 5);
      package = package.substr(0, package.find(':'));  // "libc6:amd64" -> "libc6"
      std::ifstream in(info_dir + "/" + list);
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty() && line != "/.") index.owner_.emplace(NormalizeMergedUsr(line), package);
      }
    }
  }
  std::ifstream status(dpkg_dir + "/status");
  std::string line;
  DpkgPackage current;
  bool installed = false;
  auto flush = [&] {
    if (!current.name.empty() && installed) index.packages_[current.name] = current;
    current = DpkgPackage{};
    installed = false;
  };
  while (std::getline(status, line)) {
    if (line.empty()) {
      flush();
    } else if (line.rfind("Package: ", 0) == 0) {
      current.name = line.substr(9);
    } else if (line.rfind("Version: ", 0) == 0) {
      current.version = line.substr(9);
    } else if (line.rfind("Architecture: ", 0) == 0) {
      current.architecture = line.substr(14);
    } else if (line.rfind("Status: ", 0) == 0) {
      installed = line.find(" installed") != std::string::npos;
    }
  }
  flush();
  return index;
}

const DpkgPackage* DpkgIndex::Find(const std::string& host_path) const {
  auto it = owner_.find(NormalizeMergedUsr(host_path));
  if (it == owner_.end()) return nullptr;
  auto pkg = packages_.find(it->second);
  return pkg == packages_.end() ? nullptr : &pkg->second;
}

namespace {

// SPDX ids allow letters, digits, '.' and '-'.
std::string SpdxId(const std::string& prefix, const std::string& name) {
  std::string out = prefix;
  for (char c : name) out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '-');
  return out;
}

}  // namespace

std::string SpdxJson(const Image& image, const DpkgIndex& dpkg, const std::string& tool_version) {
  struct FileRow {
    std::string id, name, sha1, sha256;
    const DpkgPackage* package;
  };
  std::vector<FileRow> files;
  std::map<std::string, const DpkgPackage*> packages;
  size_t n = 0;
  for (const auto& layer : image.layers) {
    for (const auto& f : layer.files) {
      const DpkgPackage* p = f.source.empty() ? nullptr : dpkg.Find(f.source);
      if (p) packages[p->name] = p;
      files.push_back({"SPDXRef-File-" + std::to_string(++n), "./" + f.path, f.sha1, f.sha256, p});
    }
  }
  const std::string image_id = "SPDXRef-Image";
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("spdxVersion");
  w.String("SPDX-2.3");
  w.Key("dataLicense");
  w.String("CC0-1.0");
  w.Key("SPDXID");
  w.String("SPDXRef-DOCUMENT");
  w.Key("name");
  w.String(image.metadata.reference);
  w.Key("documentNamespace");
  w.String("https://berth.invalid/spdx/" + image.metadata.title + "/" + image.manifest_digest);
  w.Key("creationInfo");
  w.BeginObject();
  w.Key("created");
  w.String(Rfc3339(image.metadata.created));
  w.Key("creators");
  w.BeginArray();
  w.String("Tool: berth-" + tool_version);
  w.EndArray();
  w.EndObject();
  w.Key("documentDescribes");
  w.BeginArray();
  w.String(image_id);
  w.EndArray();

  w.Key("packages");
  w.BeginArray();
  w.BeginObject();
  w.Key("SPDXID");
  w.String(image_id);
  w.Key("name");
  w.String(image.metadata.reference);
  w.Key("versionInfo");
  w.String(image.manifest_digest);
  w.Key("downloadLocation");
  w.String("NOASSERTION");
  w.Key("filesAnalyzed");
  w.Bool(true);
  w.Key("packageVerificationCode");
  {
    // SPDX: sha1 over the sorted sha1s of the package's files.
    std::vector<std::string> sums;
    for (const auto& f : files) sums.push_back(f.sha1);
    std::sort(sums.begin(), sums.end());
    Hasher h(EVP_sha1());
    for (const auto& s : sums) h.Update(s.data(), s.size());
    w.BeginObject();
    w.Key("packageVerificationCodeValue");
    w.String(h.HexDigest());
    w.EndObject();
  }
  w.Key("primaryPackagePurpose");
  w.String("CONTAINER");
  w.EndObject();
  for (const auto& [name, p] : packages) {
    w.BeginObject();
    w.Key("SPDXID");
    w.String(SpdxId("SPDXRef-Package-deb-", name));
    w.Key("name");
    w.String(name);
    w.Key("versionInfo");
    w.String(p->version);
    w.Key("supplier");
    w.String("Organization: Debian");
    w.Key("downloadLocation");
    w.String("NOASSERTION");
    w.Key("filesAnalyzed");
    w.Bool(false);
    w.Key("externalRefs");
    w.BeginArray();
    w.BeginObject();
    w.Key("referenceCategory");
    w.String("PACKAGE-MANAGER");
    w.Key("referenceType");
    w.String("purl");
    w.Key("referenceLocator");
    w.String("pkg:deb/debian/" + name + "@" + p->version + "?arch=" + p->architecture);
    w.EndObject();
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();

  w.Key("files");
  w.BeginArray();
  for (const auto& f : files) {
    w.BeginObject();
    w.Key("SPDXID");
    w.String(f.id);
    w.Key("fileName");
    w.String(f.name);
    w.Key("checksums");
    w.BeginArray();
    for (const auto& [alg, value] : {std::pair{"SHA1", &f.sha1}, std::pair{"SHA256", &f.sha256}}) {
      w.BeginObject();
      w.Key("algorithm");
      w.String(alg);
      w.Key("checksumValue");
      w.String(*value);
      w.EndObject();
    }
    w.EndArray();
    if (f.package) {
      w.Key("comment");
      w.String("from Debian package " + f.package->name + " " + f.package->version);
    }
    w.EndObject();
  }
  w.EndArray();

  w.Key("relationships");
  w.BeginArray();
  auto relation = [&](const std::string& from, const char* type, const std::string& to) {
    w.BeginObject();
    w.Key("spdxElementId");
    w.String(from);
    w.Key("relationshipType");
    w.String(type);
    w.Key("relatedSpdxElement");
    w.String(to);
    w.EndObject();
  };
  relation("SPDXRef-DOCUMENT", "DESCRIBES", image_id);
  for (const auto& f : files) {
    relation(image_id, "CONTAINS", f.id);
    if (f.package) relation(SpdxId("SPDXRef-Package-deb-", f.package->name), "CONTAINS", f.id);
  }
  w.EndArray();
  w.EndObject();
  return out;
}

}  // namespace berth
