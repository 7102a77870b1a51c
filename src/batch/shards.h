// Sharded `berth batch` runs (--shard I/N) and joining their parts. Shard I
// takes the records that start in the I-th of N equal byte ranges of the
// input's data; each cut point moves forward to the next record start. The
// record starts are the ones a single run sees: the shard reads the file
// from its first record with the same reader (CSV quoting included) up to
// its range's end, so a newline inside a quoted field is never a cut. That
// read costs shard I about (I+1)/N of the file's parse time, little next to
// the model's; no record is in two shards or in none.
#pragma once

#include <cstdint>
#include <string>

#include "batch/record_reader.h"
#include "berth/status.h"

namespace berth {

// FILE as shard `index` names it: FILE.part-INDEX.
std::string ShardPath(const std::string& path, int64_t index);

struct ShardRange {
  uint64_t begin = 0;         // offset of the shard's first record (the end of the file when it has none)
  int64_t begin_line = 1;     // its line
  uint64_t end = UINT64_MAX;  // records starting at or after this belong to later shards
};

// Shard `index` of `count` of what `reader` reads. Leaves the reader at an
// unspecified place: Seek it to `begin` (or a checkpoint) afterwards.
Result<ShardRange> FindShardRange(RecordReader* reader, int64_t index, int64_t count);

}  // namespace berth
