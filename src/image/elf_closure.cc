#include "image/elf_closure.h"

#include <elf.h>
#include <fcntl.h>
#include <glob.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/file_util.h"

namespace berth {
namespace fs = std::filesystem;

namespace {

// A file read with pread: libtorch_cpu is hundreds of MB, and only its
// headers and dynamic section matter here.
class ElfFile {
 public:
  explicit ElfFile(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~ElfFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  bool is_open() const { return fd_ >= 0; }
  bool Read(uint64_t offset, void* out, size_t n) const {
    ssize_t got = ::pread(fd_, out, n, static_cast<off_t>(offset));
    return got == static_cast<ssize_t>(n);
  }

 private:
  int fd_;
};

std::vector<std::string> SplitColon(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ':')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// Whether `path` is an ELF64 object for `machine` (ld.so skips others, e.g. /usr/lib32).
bool IsCompatible(const std::string& path, uint16_t machine) {
  ElfFile f(path);
  Elf64_Ehdr eh;
  if (!f.is_open() || !f.Read(0, &eh, sizeof eh)) return false;
  return std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_machine == machine;
}

}  // namespace

Result<ElfInfo> ReadElfInfo(const std::string& path) {
  ElfFile f(path);
  if (!f.is_open()) return ErrnoStatus(errno, path + ": cannot be read");
  Elf64_Ehdr eh;
  if (!f.Read(0, &eh, sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    return InvalidArgument(path + ": not an ELF file");
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    return InvalidArgument(path + ": not a little-endian ELF64 file");
  }
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 4096) {
    return InvalidArgument(path + ": unexpected program header layout");
  }
  std::vector<Elf64_Phdr> phdrs(eh.e_phnum);
  if (!phdrs.empty() && !f.Read(eh.e_phoff, phdrs.data(), phdrs.size() * sizeof(Elf64_Phdr))) {
    return InvalidArgument(path + ": truncated program headers");
  }
  ElfInfo info;
  info.machine = eh.e_machine;
  const Elf64_Phdr* dynamic = nullptr;
  for (const Elf64_Phdr& ph : phdrs) {
    if (ph.p_type == PT_INTERP && ph.p_filesz > 1 && ph.p_filesz < 4096) {
      std::string interp(ph.p_filesz, '\0');
      if (!f.Read(ph.p_offset, interp.data(), interp.size())) return InvalidArgument(path + ": truncated PT_INTERP");
      info.interpreter = interp.c_str();
    } else if (ph.p_type == PT_DYNAMIC) {
      dynamic = &ph;
    }
  }
  if (dynamic == nullptr) return info;  // static: needs nothing
  if (dynamic->p_filesz > (64u << 20)) return InvalidArgument(path + ": implausible dynamic section");
  std::vector<Elf64_Dyn> dyns(dynamic->p_filesz / sizeof(Elf64_Dyn));
  if (!f.Read(dynamic->p_offset, dyns.data(), dyns.size() * sizeof(Elf64_Dyn))) {
    return InvalidArgument(path + ": truncated dynamic section");
  }
  uint64_t strtab_addr = 0, strsz = 0;
  for (const Elf64_Dyn& d : dyns) {
    if (d.d_tag == DT_STRTAB) strtab_addr = d.d_un.d_ptr;
    if (d.d_tag == DT_STRSZ) strsz = d.d_un.d_val;
  }
  // DT_STRTAB is a virtual address: map it to a file offset through the PT_LOAD segments.
  uint64_t strtab_off = 0;
  bool mapped = false;
  for (const Elf64_Phdr& ph : phdrs) {
    if (ph.p_type == PT_LOAD && strtab_addr >= ph.p_vaddr && strtab_addr < ph.p_vaddr + ph.p_filesz) {
      strtab_off = strtab_addr - ph.p_vaddr + ph.p_offset;
      mapped = true;
      break;
    }
  }
  if (!mapped || strsz == 0 || strsz > (256u << 20))
    return InvalidArgument(path + ": cannot locate the dynamic strings");
  std::string strtab(strsz, '\0');
  if (!f.Read(strtab_off, strtab.data(), strsz)) return InvalidArgument(path + ": truncated dynamic strings");
  auto str = [&](uint64_t off) -> Result<std::string> {
    if (off >= strtab.size()) return InvalidArgument(path + ": dynamic string offset out of range");
    return std::string(strtab.c_str() + off);
  };
  for (const Elf64_Dyn& d : dyns) {
    if (d.d_tag == DT_NULL) break;
    if (d.d_tag != DT_NEEDED && d.d_tag != DT_RPATH && d.d_tag != DT_RUNPATH && d.d_tag != DT_SONAME) continue;
    ASSIGN_OR_RETURN(std::string s, str(d.d_un.d_val));
    if (d.d_tag == DT_NEEDED) info.needed.push_back(s);
    if (d.d_tag == DT_SONAME) info.soname = s;
    if (d.d_tag == DT_RPATH) {
      for (auto& p : SplitColon(s)) info.rpath.push_back(p);
    }
    if (d.d_tag == DT_RUNPATH) {
      for (auto& p : SplitColon(s)) info.runpath.push_back(p);
    }
  }
  return info;
}

std::string ExpandDynamicString(const std::string& entry, const std::string& origin) {
  static const std::pair<const char*, const char*> kTokens[] = {
      {"${ORIGIN}", nullptr},           {"$ORIGIN", nullptr},      {"${LIB}", "lib/x86_64-linux-gnu"},
      {"$LIB", "lib/x86_64-linux-gnu"}, {"${PLATFORM}", "x86_64"}, {"$PLATFORM", "x86_64"}};
  std::string out = entry;
  for (const auto& [token, value] : kTokens) {
    std::string replacement = value ? value : origin;
    for (size_t pos = out.find(token); pos != std::string::npos; pos = out.find(token, pos + replacement.size())) {
      out.replace(pos, std::strlen(token), replacement);
    }
  }
  return out;
}

std::vector<std::string> ReadLdSoConf(const std::string& path) {
  std::vector<std::string> dirs;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    std::string word;
    if (!(words >> word)) continue;
    if (word == "include") {
      std::string pattern;
      while (words >> pattern) {
        if (pattern[0] != '/') pattern = (fs::path(path).parent_path() / pattern).string();
        glob_t g{};
        if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
          for (size_t i = 0; i < g.gl_pathc; ++i) {
            for (auto& d : ReadLdSoConf(g.gl_pathv[i])) dirs.push_back(d);
          }
        }
        ::globfree(&g);
      }
    } else if (word == "hwcap") {
      continue;  // obsolete syntax
    } else {
      dirs.push_back(word);
    }
  }
  return dirs;
}

LibrarySearchPath LibrarySearchPath::System() {
  LibrarySearchPath p;
  p.conf_dirs = ReadLdSoConf("/etc/ld.so.conf");
  p.default_dirs = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"};
  return p;
}

Result<LibraryClosure> ComputeLibraryClosure(const std::vector<std::string>& roots, const LibrarySearchPath& search,
                                             const std::set<std::string>& exclude) {
  LibraryClosure closure;
  struct Pending {
    std::string path;       // file to read
    std::string needed_by;  // for messages
  };
  std::deque<Pending> queue;
  for (const auto& r : roots) queue.push_back({r, ""});
  std::set<std::string> seen_names(exclude.begin(), exclude.end());
  std::set<std::string> read_files;
  uint16_t machine = 0;
  while (!queue.empty()) {
    Pending item = queue.front();
    queue.pop_front();
    std::error_code ec;
    std::string real = fs::canonical(item.path, ec).string();
    if (ec) return NotFound(item.path + ": cannot be resolved: " + ec.message());
    if (!read_files.insert(real).second) continue;
    Result<ElfInfo> info = ReadElfInfo(real);
    if (!info.ok()) {
      return info.status().WithContext(item.needed_by.empty() ? "reading " + item.path
                                                              : "library needed by " + item.needed_by);
    }
    if (machine == 0) machine = info->machine;
    if (!info->interpreter.empty() && closure.interpreter.empty()) {
      closure.interpreter = info->interpreter;
      closure.interpreter_source = fs::canonical(info->interpreter, ec).string();
      if (ec) return NotFound(item.path + ": its loader " + info->interpreter + " is missing");
    }
    // An object's DT_RPATH applies only without DT_RUNPATH (ld.so(8)); both expand $ORIGIN.
    std::string origin = fs::path(real).parent_path().string();
    std::vector<std::string> own_dirs;
    for (const auto& d : info->runpath.empty() ? info->rpath : info->runpath) {
      own_dirs.push_back(ExpandDynamicString(d, origin));
    }
    for (const std::string& name : info->needed) {
      if (seen_names.count(name)) continue;
      std::string found;
      if (name.find('/') != std::string::npos) {
        if (IsCompatible(name, machine)) found = name;
      } else {
        const std::vector<std::string>* lists[] = {&own_dirs, &search.conf_dirs, &search.default_dirs};
        for (const std::vector<std::string>* dirs : lists) {
          for (const auto& dir : *dirs) {
            std::string candidate = dir + "/" + name;
            if (IsCompatible(candidate, machine)) {
              found = candidate;
              break;
            }
          }
          if (!found.empty()) break;
        }
      }
      if (found.empty()) return NotFound("library " + name + " needed by " + real + " not found");
      seen_names.insert(name);
      std::string source = fs::canonical(found, ec).string();
      if (ec) return NotFound(found + ": cannot be resolved: " + ec.message());
      if (::access(source.c_str(), R_OK) != 0) {
        return ErrnoStatus(errno, "library " + source + " (needed by " + real + ") cannot be read");
      }
      closure.libraries.push_back({name, found, source});
      queue.push_back({source, real});
    }
  }
  return closure;
}

}  // namespace berth
