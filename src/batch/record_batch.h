// What `berth batch` hands from its reader to the model and on to its
// writer: a run of consecutive input records, some mapped to model rows,
// some rejected while reading, and (once the model answered) the response.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "request/infer_request.h"
#include "transform/table_mapper.h"

namespace berth {

// One batch of consecutive records: the rows that mapped (sent to the model)
// and the records that did not (rejects), in input order.
struct RecordBatch {
  struct Entry {
    int64_t line = 0;
    int64_t row = -1;     // index among the mapped rows; -1 = rejected
    uint64_t offset = 0;  // where the record's text is in the input (read back for rejects)
    uint64_t length = 0;
    int32_t reject = -1;  // index into rejects: why it was rejected while reading
  };
  struct Reject {
    std::string reason;
    std::string raw;  // the original record
  };
  std::vector<Entry> entries;
  std::vector<Reject> rejects;
  int64_t rows = 0;                          // mapped rows
  std::vector<std::vector<uint8_t>> data;    // per input: the mapped rows' values
  std::vector<std::vector<size_t>> row_end;  // per BYTES input: where each row's values end
  std::string keep_arena;                    // kept values of mapped rows, back to back
  std::vector<size_t> keep_end;              // rows x keep columns
  uint64_t end_offset = 0;                   // input offset after the last record
  int64_t end_line = 1;

  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<InferResponse>> result;  // set by the scheduler's completion
};

// The request for mapped rows [first, first + count) of `b`.
std::unique_ptr<InferRequest> MakeRequest(const RecordBatch& b, int64_t first, int64_t count, const TableMapper& mapper,
                                          bool batched);

}  // namespace berth
