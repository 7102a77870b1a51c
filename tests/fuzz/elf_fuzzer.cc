// The ELF reader of `berth build` (dynamic section, PT_INTERP), on a file of the bytes.
#include "fuzz_util.h"
#include "image/elf_closure.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  berth::fuzz::MemoryFile file(data, size);
  (void)berth::ReadElfInfo(file.path());
  return 0;
}
