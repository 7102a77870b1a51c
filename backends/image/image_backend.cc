// The image backend: a processing step with no weights. Each element of its
// one BYTES input is an encoded image file (PNG, JPEG or WebP, any size, gray,
// RGB or RGBA); its one FP32 output is that image as a tensor, ready for a
// vision model:
//
//   decode (OpenCV imgcodecs) -> RGB (gray replicated, alpha dropped) -> float
//   -> [gray: 0.299 R + 0.587 G + 0.114 B] -> resize (bilinear) -> [center crop]
//   -> (pixel * scale - mean[c]) / std[c] -> NCHW or NHWC
//
// model.yaml: one input of shape [1] (one image per row; max_batch_size > 0
// takes a batch of images), one output of shape [C, H, W] (layout NCHW, the
// default) or [H, W, C] (NHWC) with C = 1 or 3. `parameters`:
//   layout          NCHW | NHWC
//   resize_shorter  0 (default): resize straight to H x W; N: resize so the
//                   shorter side is N (the longer floor(N * long / short)),
//                   then crop H x W from the center (offsets rounded half to
//                   even), as torchvision's Resize(N) + CenterCrop
//   scale           factor on the 0..255 pixel values (default 1/255)
//   mean, std       one value, or one per channel (defaults 0 and 1)
//   exif            apply (default): a JPEG's EXIF orientation turns the image
//                   upright, as cameras mean it; ignore: the stored pixels
//   max_pixels      the largest width x height an element may declare
//                   (default 16,777,216 = 4096 x 4096)
//
// Resizing is bilinear on float values without antialiasing: equal, to
// ~1e-5, to torch.nn.functional.interpolate(mode="bilinear",
// align_corners=False, antialias=False) on PIL's decode.
//
// Every element is checked by ReadImageHeader before OpenCV sees it (format,
// size against max_pixels, truncation); an element that fails, or that OpenCV
// cannot decode, fails the execution with InvalidArgument naming the input and
// the element's index in the batch. OpenCV's thread pool is process-wide (see
// the ONNX backend); resizing may use it.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "berth/backend_api.h"
#include "image_header.h"

namespace berth {
namespace {

struct ImageOptions {
  std::string input;
  std::string output;
  bool nchw = true;
  int channels = 3;
  int64_t height = 0;
  int64_t width = 0;
  int64_t resize_shorter = 0;
  float scale = 1.0f / 255.0f;
  std::vector<float> mean;  // one per channel
  std::vector<float> std;
  bool exif = true;
  int64_t max_pixels = int64_t{4096} * 4096;
};

Status ParameterError(const std::string& key, const std::string& what) {
  return InvalidArgument("model.yaml: parameters." + key + ": " + what);
}

Result<double> Number(const std::string& key, const std::string& text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) {
    return ParameterError(key, "expected a number");
  }
  return v;
}

Result<int64_t> Integer(const std::string& key, const std::string& text, int64_t lo, int64_t hi) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) {
    return ParameterError(key, "expected an integer " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return v;
}

// "0.5" or "0.485,0.456,0.406": one value, or one per channel.
Result<std::vector<float>> PerChannel(const std::string& key, const std::string& text, int channels, bool nonzero) {
  std::vector<float> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    ASSIGN_OR_RETURN(double v, Number(key, item));
    if (nonzero && v == 0) return ParameterError(key, "must not be 0");
    out.push_back(static_cast<float>(v));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.size() == 1) out.resize(channels, out[0]);
  if (static_cast<int>(out.size()) != channels) {
    return ParameterError(key, "expected 1 or " + std::to_string(channels) + " values (one per channel), got " +
                                   std::to_string(out.size()));
  }
  return out;
}

Result<ImageOptions> ParseOptions(const BackendModelConfig& c) {
  const std::string yaml = "model.yaml";
  ImageOptions o;
  if (c.inputs.size() != 1 || c.inputs[0].dtype != DataType::kBytes || c.inputs[0].shape != std::vector<int64_t>{1}) {
    return InvalidArgument(yaml + ": the image backend takes one BYTES input of shape [1] (an encoded image per row)");
  }
  if (c.outputs.size() != 1 || c.outputs[0].dtype != DataType::kFp32 || c.outputs[0].shape.size() != 3) {
    return InvalidArgument(yaml +
                           ": the image backend gives one FP32 output of shape [C, H, W] (layout NCHW) or "
                           "[H, W, C] (layout NHWC)");
  }
  o.input = c.inputs[0].name;
  o.output = c.outputs[0].name;
  std::string mean = "0", std = "1";
  for (const auto& [key, value] : c.parameters) {
    if (key == "layout") {
      if (value != "NCHW" && value != "NHWC") return ParameterError(key, "expected NCHW or NHWC");
      o.nchw = value == "NCHW";
    } else if (key == "resize_shorter") {
      ASSIGN_OR_RETURN(o.resize_shorter, Integer(key, value, 0, 65536));
    } else if (key == "scale") {
      ASSIGN_OR_RETURN(double v, Number(key, value));
      o.scale = static_cast<float>(v);
    } else if (key == "mean") {
      mean = value;
    } else if (key == "std") {
      std = value;
    } else if (key == "exif") {
      if (value != "apply" && value != "ignore") return ParameterError(key, "expected apply or ignore");
      o.exif = value == "apply";
    } else if (key == "max_pixels") {
      ASSIGN_OR_RETURN(o.max_pixels, Integer(key, value, 1, int64_t{1} << 30));
    } else {
      return ParameterError(key,
                            "unknown parameter for the image backend (expected layout, resize_shorter, scale, mean, "
                            "std, exif, max_pixels)");
    }
  }
  const std::vector<int64_t>& s = c.outputs[0].shape;
  int64_t channels = o.nchw ? s[0] : s[2];
  o.height = o.nchw ? s[1] : s[0];
  o.width = o.nchw ? s[2] : s[1];
  if (channels != 1 && channels != 3) {
    return InvalidArgument(yaml + ": output '" + o.output + "': " + (o.nchw ? "the first" : "the last") +
                           " dimension (layout " + (o.nchw ? "NCHW" : "NHWC") + ") is the channels: 1 or 3, not " +
                           std::to_string(channels));
  }
  if (o.height < 1 || o.width < 1 || o.height > 65536 || o.width > 65536) {
    return InvalidArgument(yaml + ": output '" + o.output + "': height and width must be 1..65536");
  }
  o.channels = static_cast<int>(channels);
  if (o.resize_shorter > 0 && o.resize_shorter < std::max(o.height, o.width)) {
    return ParameterError("resize_shorter", "must be at least the output's height and width (" +
                                                std::to_string(std::max(o.height, o.width)) + ") to crop from");
  }
  ASSIGN_OR_RETURN(o.mean, PerChannel("mean", mean, o.channels, false));
  ASSIGN_OR_RETURN(o.std, PerChannel("std", std, o.channels, true));
  return o;
}

class ImageInstance final : public ModelInstance {
 public:
  explicit ImageInstance(ImageOptions options, bool batched) : o_(std::move(options)), batched_(batched) {}

  Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) override {
    ASSIGN_OR_RETURN(std::vector<std::string_view> elements,
                     SplitBytesElements(inputs[0].data.data(), inputs[0].data.size()));
    const int64_t per_image = o_.channels * o_.height * o_.width;
    Tensor out;
    out.name = o_.output;
    out.dtype = DataType::kFp32;
    if (batched_) out.shape.push_back(static_cast<int64_t>(elements.size()));
    if (o_.nchw) {
      out.shape.insert(out.shape.end(), {o_.channels, o_.height, o_.width});
    } else {
      out.shape.insert(out.shape.end(), {o_.height, o_.width, o_.channels});
    }
    out.data.resize(elements.size() * per_image * sizeof(float));
    float* dst = reinterpret_cast<float*>(out.data.data());
    for (size_t i = 0; i < elements.size(); ++i) {
      Status s;
      try {
        s = DecodeOne(elements[i], dst + i * per_image);
      } catch (const cv::Exception& e) {
        s = InvalidArgument("an image OpenCV cannot decode (" + std::string(e.err) + ")");
      } catch (const std::bad_alloc&) {
        s = Status(StatusCode::kResourceExhausted, "out of memory decoding the image");
      } catch (const std::exception& e) {
        s = Internal(std::string("decoding failed: ") + e.what());
      }
      if (!s.ok()) {
        return Status(s.code(), "input '" + o_.input + "' element " + std::to_string(i) + ": " + s.message());
      }
    }
    outputs->clear();
    outputs->push_back(std::move(out));
    return Status::Ok();
  }

 private:
  Status DecodeOne(std::string_view bytes, float* dst) const {
    ASSIGN_OR_RETURN(ImageHeader h, ReadImageHeader(bytes));
    const std::string what = std::string("a ") + ImageFormatName(h.format) + " image";
    if (h.width * h.height > o_.max_pixels) {
      return InvalidArgument(what + " of " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                             " pixels, more than parameters.max_pixels (" + std::to_string(o_.max_pixels) + ")");
    }
    const cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    cv::Mat bgr = cv::imdecode(encoded, cv::IMREAD_COLOR | (o_.exif ? 0 : cv::IMREAD_IGNORE_ORIENTATION));
    if (bgr.empty()) return InvalidArgument(what + " that cannot be decoded (corrupt or truncated)");
    if (int64_t{bgr.rows} * bgr.cols > o_.max_pixels) {
      return InvalidArgument(what + " larger than parameters.max_pixels once decoded");
    }
    cv::Mat rgb, pixels;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    rgb.convertTo(pixels, CV_32FC3);
    if (o_.channels == 1) {
      cv::Mat gray;
      cv::transform(pixels, gray, cv::Matx13f(0.299f, 0.587f, 0.114f));
      pixels = gray;
    }
    int rh = static_cast<int>(o_.height), rw = static_cast<int>(o_.width), top = 0, left = 0;
    if (o_.resize_shorter > 0) {
      const int64_t n = o_.resize_shorter;
      const int64_t h64 = pixels.cols <= pixels.rows ? n * pixels.rows / pixels.cols : n;
      const int64_t w64 = pixels.cols <= pixels.rows ? n : n * pixels.cols / pixels.rows;
      // A thin image (1 x 65536) resized to a shorter side of N would be N x 65536N: bounded like the source.
      if (h64 * w64 > std::max(o_.max_pixels, n * n)) {
        return InvalidArgument(what + " of " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                               " pixels: resized to a shorter side of " + std::to_string(n) + " it would be " +
                               std::to_string(w64) + "x" + std::to_string(h64) + ", more than parameters.max_pixels (" +
                               std::to_string(o_.max_pixels) + ")");
      }
      rh = static_cast<int>(h64);
      rw = static_cast<int>(w64);
      top = static_cast<int>(std::nearbyint((rh - o_.height) / 2.0));
      left = static_cast<int>(std::nearbyint((rw - o_.width) / 2.0));
    }
    cv::Mat resized;
    cv::resize(pixels, resized, cv::Size(rw, rh), 0, 0, cv::INTER_LINEAR);
    const int c = o_.channels;
    const int64_t plane = o_.height * o_.width;
    for (int64_t y = 0; y < o_.height; ++y) {
      const float* row = resized.ptr<float>(static_cast<int>(y + top)) + static_cast<int64_t>(left) * c;
      for (int64_t x = 0; x < o_.width; ++x) {
        for (int k = 0; k < c; ++k) {
          float v = (row[x * c + k] * o_.scale - o_.mean[k]) / o_.std[k];
          dst[o_.nchw ? k * plane + y * o_.width + x : (y * o_.width + x) * c + k] = v;
        }
      }
    }
    return Status::Ok();
  }

  ImageOptions o_;
  bool batched_;
};

class ImageBackend final : public Backend {
 public:
  Result<std::unique_ptr<ModelInstance>> CreateInstance(const BackendModelConfig& config) override {
    ASSIGN_OR_RETURN(ImageOptions options, ParseOptions(config));
    return std::unique_ptr<ModelInstance>(new ImageInstance(std::move(options), config.batched()));
  }
};

}  // namespace
}  // namespace berth

BERTH_DEFINE_BACKEND("image", "", berth::ImageBackend)
