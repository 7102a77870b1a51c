// The sentencepiece backend: a processing step that turns text into token
// ids for a text model. Its one BYTES input holds one text per row (UTF-8);
// its first output holds the ids, INT64 or INT32 of shape [L]:
//
//   L > 0: every row is padded (with pad_id) or truncated to L tokens
//   L = -1: rows are padded to the longest row of the execution
//
// A second output, optional, is either `[1]` (INT64/INT32: each row's token
// count before padding) or `[L]` like the ids (the attention mask: 1 for a
// token, 0 for padding). The tokenizer is the version directory's
// `tokenizer.model` (or `sentencepiece.model`, `spm.model`), a model trained
// by sentencepiece. `parameters`:
//   add_bos, add_eos   true | false (default false): the model's <s> / </s>
//   pad_id             the padding id (default: the model's pad id, else 0)
//   truncation         right (default: keep the first tokens) | left (keep
//                      the last); <s> and </s> are kept either way
//
// The ids equal Python sentencepiece's `encode(text)` for the same model.
// Truncated to the first L, they are found from a prefix of a long text when
// the tokenizer's pieces never span a word (EncodeFirst): the same ids, for
// a fraction of the work.
// Debian's libsentencepiece carries its own protobuf: the server loads this
// plugin with RTLD_DEEPBIND (backend_registry.cc), so the two never meet.
#include <sentencepiece_processor.h>

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "berth/backend_api.h"

namespace berth {
namespace {

struct Options {
  std::string input;
  std::string ids;
  DataType ids_dtype = DataType::kInt64;
  int64_t length = -1;  // -1: the longest row
  enum class Extra { kNone, kLengths, kMask } extra = Extra::kNone;
  std::string extra_name;
  DataType extra_dtype = DataType::kInt64;
  bool add_bos = false;
  bool add_eos = false;
  int64_t pad_id = -2;  // -2: the model's
  bool keep_last = false;
};

Status ParameterError(const std::string& key, const std::string& why) {
  return InvalidArgument("model.yaml: parameters." + key + ": " + why);
}

Result<bool> ParseBool(const std::string& key, const std::string& v) {
  if (v == "true") return true;
  if (v == "false") return false;
  return ParameterError(key, "expected true or false");
}

bool IsIdType(DataType t) { return t == DataType::kInt64 || t == DataType::kInt32; }

Result<Options> ParseOptions(const BackendModelConfig& c) {
  const std::string yaml = "model.yaml";
  Options o;
  if (c.inputs.size() != 1 || c.inputs[0].dtype != DataType::kBytes) {
    return InvalidArgument(yaml + ": the sentencepiece backend takes one BYTES input (the text)");
  }
  const std::vector<int64_t>& in = c.inputs[0].shape;
  if (in.size() != 1 || in[0] != 1) {
    return InvalidArgument(yaml + ": input '" + c.inputs[0].name + "': expected shape [1] (one text per row)");
  }
  o.input = c.inputs[0].name;
  if (c.outputs.empty() || c.outputs.size() > 2) {
    return InvalidArgument(yaml +
                           ": the sentencepiece backend has one output (the ids) and optionally a second "
                           "(lengths [1] or an attention mask shaped like the ids)");
  }
  const BackendTensorSpec& ids = c.outputs[0];
  if (!IsIdType(ids.dtype) || ids.shape.size() != 1 || ids.shape[0] == 0 || ids.shape[0] < -1) {
    return InvalidArgument(yaml + ": output '" + ids.name +
                           "': expected INT64 or INT32 of shape [L] (L tokens; -1 = "
                           "the longest row)");
  }
  o.ids = ids.name;
  o.ids_dtype = ids.dtype;
  o.length = ids.shape[0];
  if (c.outputs.size() == 2) {
    const BackendTensorSpec& e = c.outputs[1];
    if (!IsIdType(e.dtype) || e.shape.size() != 1) {
      return InvalidArgument(yaml + ": output '" + e.name + "': expected INT64 or INT32 of shape [1] (lengths) or [" +
                             std::to_string(o.length) + "] (the attention mask)");
    }
    if (e.shape[0] == 1 && o.length != 1) {
      o.extra = Options::Extra::kLengths;
    } else if (e.shape[0] == o.length) {
      o.extra = Options::Extra::kMask;
    } else {
      return InvalidArgument(yaml + ": output '" + e.name + "': expected shape [1] (lengths) or [" +
                             std::to_string(o.length) + "] (the attention mask)");
    }
    o.extra_name = e.name;
    o.extra_dtype = e.dtype;
  }
  for (const auto& [key, v] : c.parameters) {
    if (key == "add_bos") {
      ASSIGN_OR_RETURN(o.add_bos, ParseBool(key, v));
    } else if (key == "add_eos") {
      ASSIGN_OR_RETURN(o.add_eos, ParseBool(key, v));
    } else if (key == "pad_id") {
      try {
        size_t used = 0;
        o.pad_id = std::stoll(v, &used);
        if (used != v.size() || o.pad_id < 0) throw std::invalid_argument(v);
      } catch (const std::exception&) {
        return ParameterError(key, "expected a token id (0 or more)");
      }
    } else if (key == "truncation") {
      if (v != "right" && v != "left") return ParameterError(key, "expected right or left");
      o.keep_last = v == "left";
    } else {
      return ParameterError(key,
                            "unknown parameter for the sentencepiece backend (expected add_bos, add_eos, "
                            "pad_id, truncation)");
    }
  }
  const int64_t specials = (o.add_bos ? 1 : 0) + (o.add_eos ? 1 : 0);
  if (o.length > 0 && o.length <= specials) {
    return InvalidArgument(yaml + ": output '" + o.ids + "': " + std::to_string(o.length) +
                           " tokens leave no room for text next to <s>/</s>");
  }
  return o;
}

template <typename T>
void Put(std::vector<uint8_t>* data, size_t index, int64_t v) {
  reinterpret_cast<T*>(data->data())[index] = static_cast<T>(v);
}

void PutId(DataType t, std::vector<uint8_t>* data, size_t index, int64_t v) {
  if (t == DataType::kInt64) {
    Put<int64_t>(data, index, v);
  } else {
    Put<int32_t>(data, index, v);
  }
}

class SentencePieceInstance final : public ModelInstance {
 public:
  SentencePieceInstance(Options o, std::unique_ptr<sentencepiece::SentencePieceProcessor> sp, bool batched)
      : o_(std::move(o)), sp_(std::move(sp)), batched_(batched), words_(PiecesStartWords(*sp_)) {
    pad_ = o_.pad_id >= 0 ? o_.pad_id : (sp_->pad_id() >= 0 ? sp_->pad_id() : 0);
  }

  Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) override {
    ASSIGN_OR_RETURN(std::vector<std::string_view> texts,
                     SplitBytesElements(inputs[0].data.data(), inputs[0].data.size()));
    std::vector<std::vector<int>> rows(texts.size());
    const int64_t specials = (o_.add_bos ? 1 : 0) + (o_.add_eos ? 1 : 0);
    int64_t longest = 1;
    for (size_t i = 0; i < texts.size(); ++i) {
      std::vector<int>& ids = rows[i];
      const bool first = o_.length > 0 && !o_.keep_last && o_.length > specials;
      sentencepiece::util::Status s =
          first ? EncodeFirst(texts[i], static_cast<size_t>(o_.length - specials), &ids) : sp_->Encode(texts[i], &ids);
      if (!s.ok()) {
        return InvalidArgument("input '" + o_.input + "' element " + std::to_string(i) +
                               ": sentencepiece cannot encode it (" + s.ToString() + ")");
      }
      if (o_.length > 0 && static_cast<int64_t>(ids.size()) > o_.length - specials) {
        const size_t keep = static_cast<size_t>(o_.length - specials);
        if (o_.keep_last) {
          ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(keep));
        } else {
          ids.resize(keep);
        }
      }
      if (o_.add_bos) ids.insert(ids.begin(), sp_->bos_id());
      if (o_.add_eos) ids.push_back(sp_->eos_id());
      longest = std::max(longest, static_cast<int64_t>(ids.size()));
    }
    const int64_t width = o_.length > 0 ? o_.length : longest;
    const size_t n = rows.size();
    Tensor ids{o_.ids, o_.ids_dtype, {}, {}};
    ids.shape = batched_ ? std::vector<int64_t>{static_cast<int64_t>(n), width} : std::vector<int64_t>{width};
    ids.data.resize(n * static_cast<size_t>(width) * DataTypeSize(o_.ids_dtype));
    Tensor extra{o_.extra_name, o_.extra_dtype, {}, {}};
    const int64_t extra_width = o_.extra == Options::Extra::kLengths ? 1 : width;
    if (o_.extra != Options::Extra::kNone) {
      extra.shape =
          batched_ ? std::vector<int64_t>{static_cast<int64_t>(n), extra_width} : std::vector<int64_t>{extra_width};
      extra.data.resize(n * static_cast<size_t>(extra_width) * DataTypeSize(o_.extra_dtype));
    }
    for (size_t r = 0; r < n; ++r) {
      const std::vector<int>& row = rows[r];
      for (int64_t k = 0; k < width; ++k) {
        const bool token = k < static_cast<int64_t>(row.size());
        PutId(o_.ids_dtype, &ids.data, r * width + k, token ? row[k] : pad_);
        if (o_.extra == Options::Extra::kMask) PutId(o_.extra_dtype, &extra.data, r * width + k, token ? 1 : 0);
      }
      if (o_.extra == Options::Extra::kLengths) {
        PutId(o_.extra_dtype, &extra.data, r, static_cast<int64_t>(row.size()));
      }
    }
    outputs->clear();
    outputs->push_back(std::move(ids));
    if (o_.extra != Options::Extra::kNone) outputs->push_back(std::move(extra));
    return Status::Ok();
  }

 private:
  // Whether every piece starts a word or continues one: "▁" (a space, once
  // normalised) only ever at a piece's start, as sentencepiece's trainer makes
  // them by default (split_by_whitespace). Then the segmentation of a text is
  // cut at every space, and a prefix of the text that ends just before a
  // space encodes to a prefix of the whole text's ids.
  static bool PiecesStartWords(const sentencepiece::SentencePieceProcessor& sp) {
    static constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581, sentencepiece's space
    bool spaces = false;
    for (int i = 0; i < sp.GetPieceSize(); ++i) {
      std::string_view piece = sp.IdToPiece(i);
      if (piece.find(kSpace, 1) != std::string_view::npos) return false;  // a piece across or after a space
      if (piece.find(' ') != std::string_view::npos) return false;        // spaces not escaped as "▁"
      spaces = spaces || piece.substr(0, kSpace.size()) == kSpace;
    }
    return spaces;  // no piece with "▁": whitespace is not escaped, nothing is cut
  }

  // The first `keep` ids of `text` (more, up to the whole text's, if they
  // come). A long text needs only its beginning: encode a prefix cut just
  // before a space, from ~4 bytes an id and doubling, until it gives more ids
  // than `keep` with a margin (the last word before the cut, and whatever the
  // normaliser does around it, never reach the ids kept).
  sentencepiece::util::Status EncodeFirst(std::string_view text, size_t keep, std::vector<int>* ids) const {
    static constexpr size_t kMargin = 8;
    if (words_) {
      for (size_t n = 4 * (keep + kMargin); n < text.size(); n = std::max(2 * n, n + 1)) {
        const size_t cut = text.find(' ', n);
        if (cut == std::string_view::npos) break;
        sentencepiece::util::Status s = sp_->Encode(text.substr(0, cut), ids);
        if (!s.ok() || ids->size() > keep + kMargin) return s;
        n = cut;  // the next prefix ends past this one's space, at twice its length at least
      }
    }
    return sp_->Encode(text, ids);
  }

  Options o_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  bool batched_;
  bool words_;  // PiecesStartWords: EncodeFirst may stop at a prefix
  int64_t pad_ = 0;
};

class SentencePieceBackend final : public Backend {
 public:
  Result<std::unique_ptr<ModelInstance>> CreateInstance(const BackendModelConfig& c) override {
    ASSIGN_OR_RETURN(Options o, ParseOptions(c));
    if (c.model_file.empty()) {
      return InvalidArgument("the sentencepiece backend needs tokenizer.model in the version directory");
    }
    auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
    try {
      sentencepiece::util::Status s = sp->Load(c.model_file);
      if (!s.ok()) {
        // sentencepiece's message names the path; the file's name in the version directory is enough.
        return InvalidArgument(
            "tokenizer.model: not a sentencepiece model (" +
            std::string(s.code() == sentencepiece::util::StatusCode::kNotFound ? "not found" : "cannot parse") + ")");
      }
    } catch (const std::exception& e) {
      return InvalidArgument(std::string("tokenizer.model: sentencepiece failed to load it: ") + e.what());
    }
    if (o.pad_id >= sp->GetPieceSize()) {
      return ParameterError("pad_id", "the tokenizer has " + std::to_string(sp->GetPieceSize()) + " ids, 0.." +
                                          std::to_string(sp->GetPieceSize() - 1));
    }
    if ((o.add_bos && sp->bos_id() < 0) || (o.add_eos && sp->eos_id() < 0)) {
      return ParameterError(o.add_bos && sp->bos_id() < 0 ? "add_bos" : "add_eos",
                            "the tokenizer was trained without that token");
    }
    return std::unique_ptr<ModelInstance>(new SentencePieceInstance(std::move(o), std::move(sp), c.batched()));
  }
};

}  // namespace
}  // namespace berth

BERTH_DEFINE_BACKEND("sentencepiece", "tokenizer.model,sentencepiece.model,spm.model", berth::SentencePieceBackend)
