#include "transform/transform_instance.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <set>

#include "common/config_reader.h"

namespace berth {
namespace {

bool IsFloat(DataType t) { return t == DataType::kFp16 || t == DataType::kFp32 || t == DataType::kFp64; }

std::string InputList(const ModelConfig& config) {
  std::string out;
  for (size_t i = 0; i < config.inputs.size() && i < 12; ++i) out += (i ? ", " : "") + config.inputs[i].name;
  if (config.inputs.size() > 12) out += ", …";
  return out;
}

// The text a number input contributes to its row, as a CSV field would hold
// it: integers exactly, floating point in the shortest form that reads back
// to the same value, NaN as a missing value ("").
std::string_view NumberText(const Tensor& t, int64_t i, std::string* buf) {
  char text[64];
  std::to_chars_result r{text, std::errc()};
  const size_t at = static_cast<size_t>(i);
  if (t.dtype == DataType::kInt64) {
    int64_t v;
    std::memcpy(&v, t.data.data() + at * 8, 8);
    r = std::to_chars(text, text + sizeof text, v);
  } else if (t.dtype == DataType::kUint64) {
    uint64_t v;
    std::memcpy(&v, t.data.data() + at * 8, 8);
    r = std::to_chars(text, text + sizeof text, v);
  } else {
    double v = ElementAsDouble(t, i);
    if (std::isnan(v)) return {};
    if (IsFloat(t.dtype)) {
      r = std::to_chars(text, text + sizeof text, v);
    } else {  // up to 32-bit integers and BOOL: exact as an integer
      r = std::to_chars(text, text + sizeof text, static_cast<int64_t>(v));
    }
  }
  buf->assign(text, r.ptr);
  return *buf;
}

// TableMapper speaks of a table's columns filling model inputs; here the
// columns are this model's inputs and what they fill are its outputs.
std::string Reword(std::string message) {
  auto replace = [&](const std::string& from, const std::string& to) {
    for (size_t at = message.find(from); at != std::string::npos; at = message.find(from, at + to.size())) {
      message.replace(at, from.size(), to);
    }
  };
  replace(", and input '", ", and output '");
  replace("column '", "input '");
  return message;
}

}  // namespace

Result<std::unique_ptr<TransformInstance>> TransformInstance::Create(const ModelConfig& config) {
  std::vector<std::string> names;
  for (size_t i = 0; i < config.inputs.size(); ++i) {
    const TensorSpec& in = config.inputs[i];
    if (in.shape != std::vector<int64_t>{1}) {
      return InvalidArgument("model.yaml: inputs[" + std::to_string(i) + "] '" + in.name +
                             "': a transform takes one value per row (a table column): expected shape [1], got " +
                             ShapeToString(in.shape));
    }
    names.push_back(in.name);
  }
  const Transforms& tr = config.transforms;
  std::set<std::string> used;  // inputs some output's columns name
  ModelConfig table;           // for TableMapper: the outputs are what it fills, the inputs its columns
  table.transforms = tr;
  for (size_t i = 0; i < config.outputs.size(); ++i) {
    const TensorSpec& out = config.outputs[i];
    const std::string key = "model.yaml: outputs[" + std::to_string(i) + "] '" + out.name + "'";
    if (out.columns.empty()) {
      return InvalidArgument(key + ": columns: missing (list the inputs that fill this output, in order)");
    }
    int64_t values = 0;
    for (const std::string& col : out.columns) {
      if (!config.FindInput(col)) {
        return InvalidArgument(key + ".columns: '" + ConfigReader::KeyText(col) +
                               "' is not an input of this transform (its inputs: " + InputList(config) + ")");
      }
      used.insert(col);
      auto hot = tr.one_hot.find(col);
      values += hot == tr.one_hot.end() ? 1 : static_cast<int64_t>(hot->second.size());
      if (tr.standardize.count(col) && !IsFloat(out.dtype)) {
        return InvalidArgument("model.yaml: transforms.standardize." + ConfigReader::KeyText(col) + ": output '" +
                               out.name + "' is " + std::string(DataTypeName(out.dtype)) +
                               "; standardize needs a floating-point output");
      }
      if (hot != tr.one_hot.end() && out.dtype == DataType::kBytes) {
        return InvalidArgument("model.yaml: transforms.one_hot." + ConfigReader::KeyText(col) + ": output '" +
                               out.name + "' is BYTES; one_hot needs a numeric output");
      }
    }
    int64_t fixed = 1;
    bool unknown = false;
    for (int64_t d : out.shape) d < 0 ? unknown = true : fixed *= d;
    if (!unknown && fixed != values) {
      return InvalidArgument(key + ": shape " + ShapeToString(out.shape) + " holds " + std::to_string(fixed) +
                             " values per row, but its columns give " + std::to_string(values) +
                             " (a one_hot input gives one per category)");
    }
    table.inputs.push_back(out);
  }
  for (size_t i = 0; i < config.inputs.size(); ++i) {
    if (!used.count(config.inputs[i].name)) {
      return InvalidArgument("model.yaml: inputs[" + std::to_string(i) + "] '" + config.inputs[i].name +
                             "': no output's columns use it");
    }
  }
  auto check_used = [&](const char* section, const auto& by_column) -> Status {
    for (const auto& entry : by_column) {
      if (!used.count(entry.first)) {
        return InvalidArgument("model.yaml: transforms." + std::string(section) + "." +
                               ConfigReader::KeyText(entry.first) +
                               ": not an input of this transform (its inputs: " + InputList(config) + ")");
      }
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(check_used("fill_missing", tr.fill_missing));
  RETURN_IF_ERROR(check_used("standardize", tr.standardize));
  RETURN_IF_ERROR(check_used("one_hot", tr.one_hot));
  Result<TableMapper> mapper = TableMapper::Create(table, names);
  if (!mapper.ok()) return InvalidArgument("model.yaml: " + Reword(mapper.status().message()));
  return std::unique_ptr<TransformInstance>(new TransformInstance(std::move(mapper).value(), config));
}

TransformInstance::TransformInstance(TableMapper mapper, const ModelConfig& config)
    : mapper_(std::move(mapper)), batched_(config.batched()), numbers_(config.inputs.size()) {
  for (const TensorSpec& in : config.inputs) input_dtypes_.push_back(in.dtype);
  for (const TensorSpec& out : config.outputs) output_names_.push_back(out.name);
}

Status TransformInstance::Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) {
  const int64_t rows = batched_ ? inputs[0].shape[0] : 1;
  std::vector<std::vector<std::string_view>> texts(inputs.size());
  if (inputs.size() != input_dtypes_.size() || rows < 0) return InvalidArgument("transform: unexpected inputs");
  for (size_t j = 0; j < inputs.size(); ++j) {
    const size_t n = static_cast<size_t>(rows);
    if (input_dtypes_[j] != DataType::kBytes) {
      if (inputs[j].data.size() != n * DataTypeSize(input_dtypes_[j])) {
        return InvalidArgument("input '" + inputs[j].name + "': expected one value per row");
      }
      continue;
    }
    ASSIGN_OR_RETURN(texts[j], SplitBytesElements(inputs[j].data.data(), inputs[j].data.size()));
    if (texts[j].size() != n) return InvalidArgument("input '" + inputs[j].name + "': expected one value per row");
  }
  std::vector<std::vector<uint8_t>> data(mapper_.num_inputs());
  for (size_t i = 0; i < data.size(); ++i) {
    if (mapper_.input_dtype(i) == DataType::kBytes) continue;
    int64_t per_row = 1;
    for (int64_t d : mapper_.row_shape(i)) per_row *= d;
    data[i].reserve(static_cast<size_t>(rows * per_row) * DataTypeSize(mapper_.input_dtype(i)));
  }
  std::vector<std::string_view> fields(inputs.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (size_t j = 0; j < inputs.size(); ++j) {
      fields[j] = input_dtypes_[j] == DataType::kBytes ? texts[j][static_cast<size_t>(r)]
                                                       : NumberText(inputs[j], r, &numbers_[j]);
    }
    Status s = mapper_.AppendRow(fields, &data);
    if (!s.ok()) return InvalidArgument((batched_ ? "row " + std::to_string(r) + ": " : "") + Reword(s.message()));
  }
  outputs->clear();
  for (size_t i = 0; i < data.size(); ++i) {
    Tensor t;
    t.name = output_names_[i];
    t.dtype = mapper_.input_dtype(i);
    if (batched_) t.shape.push_back(rows);
    t.shape.insert(t.shape.end(), mapper_.row_shape(i).begin(), mapper_.row_shape(i).end());
    t.data = std::move(data[i]);
    outputs->push_back(std::move(t));
  }
  return Status::Ok();
}

}  // namespace berth
