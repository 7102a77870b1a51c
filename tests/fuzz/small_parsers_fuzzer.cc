// The small parsers of untrusted text: URLs, content codings (gzip/deflate
// bodies with a bound), checkpoint files, pipeline `when:` conditions,
// multipart/form-data uploads (the Content-Type's boundary from the first line),
// W3C traceparent headers.
#include "batch/batch_files.h"
#include "common/pipeline_condition.h"
#include "fuzz_util.h"
#include "net/url.h"
#include "protocol/http/content_coding.h"
#include "protocol/http/raw_upload.h"
#include "request/traceparent.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  auto text = berth::fuzz::View(data + 1, size - 1);
  switch (data[0] % 7) {
    case 0: {
      auto url = berth::ParseUrl(text);
      if (url.ok()) (void)berth::ResolveUrl(*url, text);
      break;
    }
    case 1: {
      auto out = berth::DecodeBody(berth::ContentCoding::kGzip, text, 1 << 20);
      if (out.ok() && out->size() > (1u << 20)) __builtin_trap();  // the bound holds
      break;
    }
    case 2: {
      auto out = berth::DecodeBody(berth::ContentCoding::kDeflate, text, 1 << 20);
      if (out.ok() && out->size() > (1u << 20)) __builtin_trap();
      break;
    }
    case 3: (void)berth::CheckpointFromJson(text, "out.checkpoint"); break;
    case 4: {
      auto cond = berth::Condition::Parse(std::string(text));
      if (cond.ok()) {
        berth::Tensor t;
        t.dtype = berth::DataType::kFp32;
        t.shape = {2};
        t.data.assign(8, 0x3f);
        (void)(*cond)->Evaluate([&](const berth::TensorRef& ref) { return ref.step.empty() ? &t : nullptr; });
      }
      break;
    }
    case 5: {
      size_t eol = text.find('\n');
      if (eol == std::string_view::npos) break;
      auto parts = berth::SplitMultipart(text.substr(0, eol), text.substr(eol + 1));
      if (parts.ok()) {
        for (std::string_view part : *parts) {  // views inside the body
          if (part.data() < text.data() || part.data() + part.size() > text.data() + text.size()) __builtin_trap();
        }
      }
      break;
    }
    case 6: {
      std::string checked = berth::CheckedTraceparent(text);
      if (!checked.empty() && checked.size() != 55) __builtin_trap();  // version-00 form, or nothing
      break;
    }
  }
  return 0;
}
