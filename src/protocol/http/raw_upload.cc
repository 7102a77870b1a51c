#include "protocol/http/raw_upload.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace berth {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "image/png; charset=x" -> "image/png"
std::string MediaType(std::string_view content_type) {
  return Lower(Trim(content_type.substr(0, content_type.find(';'))));
}

// The boundary parameter of a multipart Content-Type (RFC 2046 5.1.1: 1..70 characters, maybe quoted).
Result<std::string> Boundary(std::string_view content_type) {
  size_t at = 0;
  while ((at = content_type.find(';', at)) != std::string_view::npos) {
    ++at;
    std::string_view param = Trim(content_type.substr(at, content_type.find(';', at) - at));
    size_t eq = param.find('=');
    if (eq == std::string_view::npos || Lower(Trim(param.substr(0, eq))) != "boundary") continue;
    std::string_view value = Trim(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (value.empty() || value.size() > 70) break;
    return std::string(value);
  }
  return InvalidArgument("multipart/form-data body: the Content-Type has no valid boundary parameter");
}

Status BadMultipart(const std::string& what) { return InvalidArgument("multipart/form-data body: " + what); }

// The next delimiter at or after `from`: CRLF "--" boundary, then "--" or padding and CRLF (RFC 2046 5.1.1);
// the same bytes followed by anything else are data.
size_t FindDelimiter(std::string_view body, const std::string& delimiter, size_t from) {
  while ((from = body.find(delimiter, from)) != std::string_view::npos) {
    size_t after = from + delimiter.size();
    if (body.substr(after, 2) == "--") return from;
    while (after < body.size() && (body[after] == ' ' || body[after] == '\t')) ++after;
    if (body.substr(after, 2) == "\r\n") return from;
    from += 1;
  }
  return std::string_view::npos;
}

}  // namespace

UploadKind UploadKindOf(std::string_view content_type, bool has_json_length) {
  if (has_json_length || content_type.empty()) return UploadKind::kNone;
  // On every infer request: no allocation.
  std::string_view type = Trim(content_type.substr(0, content_type.find(';')));
  auto is = [&](std::string_view want, bool prefix) {
    if (prefix ? type.size() < want.size() : type.size() != want.size()) return false;
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(type[i])) != want[i]) return false;
    }
    return true;
  };
  if (is("multipart/form-data", false)) return UploadKind::kMultipart;
  if (is("text/", true) || is("image/", true) || is("application/octet-stream", false)) return UploadKind::kRaw;
  return UploadKind::kNone;
}

Result<std::vector<std::string_view>> SplitMultipart(std::string_view content_type, std::string_view body) {
  ASSIGN_OR_RETURN(std::string boundary, Boundary(content_type));
  const std::string delimiter = "\r\n--" + boundary;
  // The first boundary may open the body (no CRLF before it) or follow a preamble.
  size_t at;
  if (body.substr(0, delimiter.size() - 2) == std::string_view(delimiter).substr(2)) {
    at = delimiter.size() - 2;
  } else {
    size_t first = FindDelimiter(body, delimiter, 0);
    if (first == std::string_view::npos) return BadMultipart("no boundary found (is the boundary parameter right?)");
    at = first + delimiter.size();
  }
  std::vector<std::string_view> parts;
  while (true) {
    // After a boundary: "--" closes the body, else transport padding and CRLF open a part.
    if (body.substr(at, 2) == "--") break;
    while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
    if (body.substr(at, 2) != "\r\n") return BadMultipart("a boundary not followed by a line break");
    at += 2;
    std::string_view rest = body.substr(at);
    size_t headers_end = rest.substr(0, 2) == "\r\n" ? 0 : rest.find("\r\n\r\n");
    if (headers_end == std::string_view::npos) {
      return BadMultipart("part " + std::to_string(parts.size()) + " has no end to its headers");
    }
    size_t content = at + (headers_end == 0 ? 2 : headers_end + 4);
    size_t end = FindDelimiter(body, delimiter, content);
    if (end == std::string_view::npos) {
      return BadMultipart("part " + std::to_string(parts.size()) + " has no closing boundary (cut short?)");
    }
    parts.push_back(body.substr(content, end - content));
    at = end + delimiter.size();
  }
  if (parts.empty()) return BadMultipart("no parts");
  return parts;
}

bool HasOneBytesInput(const ModelConfig& config) {
  return std::count_if(config.inputs.begin(), config.inputs.end(),
                       [](const TensorSpec& in) { return in.dtype == DataType::kBytes; }) == 1;
}

Result<std::unique_ptr<InferRequest>> UploadRequest(const ModelConfig& config, std::string_view model,
                                                    const std::vector<std::string_view>& elements,
                                                    std::string_view content_type) {
  const std::string where = "a " + MediaType(content_type) + " body for model '" + std::string(model) + "': ";
  const TensorSpec* target = nullptr;
  int bytes_inputs = 0;
  for (const TensorSpec& in : config.inputs) {
    if (in.dtype == DataType::kBytes) {
      ++bytes_inputs;
      target = &in;
    }
  }
  if (bytes_inputs != 1) {
    return InvalidArgument(where + "a raw or multipart body is the value of a model's one BYTES input, and this " +
                           "model has " + (bytes_inputs == 0 ? "none" : std::to_string(bytes_inputs)) +
                           "; send v2 JSON");
  }
  for (const TensorSpec& in : config.inputs) {
    if (&in != target && !in.optional) {
      return InvalidArgument(where + "the model also needs input '" + in.name + "'; send v2 JSON");
    }
  }
  const int64_t n = static_cast<int64_t>(elements.size());
  std::vector<int64_t> row = target->shape;
  int64_t row_elements = 1;
  for (int64_t& d : row) {
    if (d < 0) d = 1;
    row_elements *= d;
  }
  Tensor t;
  t.name = target->name;
  t.dtype = DataType::kBytes;
  if (row_elements != 1) {
    return InvalidArgument(where + "input '" + target->name + "' takes " + std::to_string(row_elements) +
                           " elements per row; a raw or multipart body gives one per row");
  }
  if (config.max_batch_size > 0) {
    t.shape = row;
    t.shape.insert(t.shape.begin(), n);
  } else if (n == 1) {
    t.shape = row;
  } else if (target->shape == std::vector<int64_t>{-1}) {
    t.shape = {n};
  } else {
    return InvalidArgument(where + "the model takes one element, not " + std::to_string(n) + " parts");
  }
  for (std::string_view e : elements) AppendBytesElement(e, &t.data);
  auto request = std::make_unique<InferRequest>();
  request->inputs.push_back(std::move(t));
  request->batch_size = config.max_batch_size > 0 ? n : 1;
  return request;
}

}  // namespace berth
