// The CSV and JSON Lines readers of `berth batch`, over a file of the bytes,
// with small blocks so that records cross block boundaries.
#include "batch/record_reader.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  bool jsonl = data[0] & 1;
  berth::fuzz::MemoryFile file(data + 1, size - 1);
  berth::RecordReader::Options o;
  o.block_bytes = 4096 + (data[0] >> 1) * 61;
  o.max_record_bytes = 1 << 16;
  auto reader = jsonl ? berth::RecordReader::OpenJsonl(file.path(), o) : berth::RecordReader::OpenCsv(file.path(), o);
  if (!reader.ok()) return 0;
  berth::Record rec;
  for (int i = 0; i < 100000; ++i) {
    auto more = (*reader)->Next(&rec);
    if (!more.ok() || !*more) break;
    std::string raw;
    (void)(*reader)->ReadRaw(rec.offset, rec.raw.size(), &raw);
    if (raw != rec.raw) __builtin_trap();  // rejects are read back from the input: the same bytes
  }
  return 0;
}
