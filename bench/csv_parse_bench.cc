// Measures `berth batch`'s CSV reading on one core, without the model:
//   csv_parse_bench FILE.csv
// prints MB/s for (1) splitting records and fields, (2) that plus converting
// every column to FP32 into tensor memory (what `berth batch` does per row).
#include <chrono>
#include <cstdio>
#include <string>

#include "batch/record_reader.h"
#include "transform/table_mapper.h"

using berth::Record;
using berth::RecordReader;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE.csv\n", argv[0]);
    return 2;
  }
  for (int mode = 0; mode < 2; ++mode) {
    double best = 1e9;
    int64_t rows = 0;
    uint64_t bytes = 0;
    for (int rep = 0; rep < 3; ++rep) {
      auto reader = RecordReader::OpenCsv(argv[1], RecordReader::Options());
      if (!reader.ok()) {
        std::fprintf(stderr, "%s\n", reader.status().message().c_str());
        return 1;
      }
      std::string yaml = "backend: identity\nmax_batch_size: 1024\ninputs: [{name: f, datatype: FP32, shape: [" +
                         std::to_string((*reader)->columns().size()) + "], columns: [";
      for (size_t i = 0; i < (*reader)->columns().size(); ++i)
        yaml += (i ? ", \"" : "\"") + (*reader)->columns()[i] + "\"";
      yaml += "]}]\noutputs: [{name: f, datatype: FP32, shape: [1]}]\n";
      auto config = berth::ParseModelConfig(yaml, "bench", "bench");
      auto mapper = berth::TableMapper::Create(*config, (*reader)->columns());
      if (!mapper.ok()) {
        std::fprintf(stderr, "%s\n", mapper.status().message().c_str());
        return 1;
      }
      std::vector<std::vector<uint8_t>> data(1);
      data[0].reserve(1024 * 4 * (*reader)->columns().size());
      Record rec;
      rows = 0;
      auto t0 = std::chrono::steady_clock::now();
      for (;;) {
        auto any = (*reader)->Next(&rec);
        if (!any.ok() || !*any) break;
        ++rows;
        if (mode == 1) {
          if (!mapper->AppendRow(rec.fields, &data).ok()) return 1;
          if (rows % 1024 == 0) data[0].clear();
        }
      }
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, s);
      bytes = (*reader)->file_size();
    }
    std::printf("%-28s %10lld rows  %8.1f MB/s  %6.1f ns/row\n",
                mode == 0 ? "split records and fields" : "split + convert to FP32", static_cast<long long>(rows),
                bytes / 1e6 / best, best * 1e9 / rows);
  }
  return 0;
}
