// The shared-library closure of ELF executables and plugins: what the dynamic
// loader would map for them, found the way it finds them (DT_RPATH/DT_RUNPATH
// with $ORIGIN, /etc/ld.so.conf, the default directories), so that an image
// can carry exactly those files.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "berth/status.h"

namespace berth {

// What the loader reads from one ELF64 file.
struct ElfInfo {
  std::string interpreter;  // PT_INTERP, "" for shared libraries
  std::string soname;       // DT_SONAME, may be ""
  std::vector<std::string> needed;
  std::vector<std::string> rpath;    // DT_RPATH entries, unexpanded
  std::vector<std::string> runpath;  // DT_RUNPATH entries, unexpanded
  uint16_t machine = 0;              // e_machine
};

// Parses the ELF header, PT_INTERP and the dynamic section of `path`.
// InvalidArgument if it is not a little-endian ELF64 file; NotFound if it
// cannot be read.
Result<ElfInfo> ReadElfInfo(const std::string& path);

// Where libraries are looked for after an object's own RPATH/RUNPATH.
struct LibrarySearchPath {
  std::vector<std::string> conf_dirs;     // from ld.so.conf, in order
  std::vector<std::string> default_dirs;  // the loader's built-in directories

  // /etc/ld.so.conf (with its `include` globs) and Debian's x86_64 defaults.
  static LibrarySearchPath System();
};

// The directories listed in an ld.so.conf file, following `include` globs
// (relative ones from the file's directory); missing files give no dirs.
std::vector<std::string> ReadLdSoConf(const std::string& path);

// One library of a closure.
struct ClosureLibrary {
  std::string name;      // the DT_NEEDED string the loader looks for
  std::string found_at;  // the path where the search found it (maybe a symlink)
  std::string source;    // the file it resolves to (symlinks followed: alternatives included)
};

struct LibraryClosure {
  std::string interpreter;                // the loader's path as the executables ask for it ("" if none)
  std::string interpreter_source;         // the loader's real file
  std::vector<ClosureLibrary> libraries;  // in breadth-first discovery order
};

// The closure of `roots` (executables or shared objects), excluding any
// library whose name is in `exclude` (already provided by another layer).
// NotFound naming the library and who needs it if one cannot be found;
// the ELF error if a root or library cannot be read.
Result<LibraryClosure> ComputeLibraryClosure(const std::vector<std::string>& roots, const LibrarySearchPath& search,
                                             const std::set<std::string>& exclude = {});

// Expands $ORIGIN / ${ORIGIN}, $LIB and $PLATFORM in an RPATH/RUNPATH entry.
std::string ExpandDynamicString(const std::string& entry, const std::string& origin);

}  // namespace berth
