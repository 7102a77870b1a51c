// The XGBoost model file checks, with XGBoost's own loader and predictor
// behind them: anything the checks let through that crashes, hangs or
// corrupts XGBoost 1.7 is a hole in the checks. The first byte picks JSON
// or UBJSON.
#include <xgboost/c_api.h>

#include <cmath>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "model_file_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string name = (data[0] & 1) ? "model.ubj" : "model.json";
  auto bytes = berth::fuzz::View(data + 1, size - 1);
  auto format = berth::DetectXgboostFormat(bytes, name);
  if (!format.ok()) return 0;
  auto facts = berth::CheckXgboostModel(bytes, *format);
  if (!facts.ok()) return 0;
  BoosterHandle booster = nullptr;
  if (XGBoosterCreate(nullptr, 0, &booster) != 0) return 0;
  XGBoosterSetParam(booster, "nthread", "1");
  if (XGBoosterLoadModelFromBuffer(booster, bytes.data(), bytes.size()) == 0) {
    bst_ulong num_feature = 0;
    if (XGBoosterGetNumFeature(booster, &num_feature) == 0 && num_feature > 0 && num_feature <= (1u << 20)) {
      bst_ulong len = 0;
      const char* out = nullptr;
      (void)XGBoosterSaveModelToBuffer(booster, "{\"format\":\"json\"}", &len, &out);
      for (float value : {NAN, 0.0f, 1e9f, -1e9f}) {
        std::vector<float> row(num_feature, value);
        std::string array = "{\"data\":[" + std::to_string(reinterpret_cast<uintptr_t>(row.data())) +
                            ",true],\"shape\":[1," + std::to_string(num_feature) +
                            "],\"strides\":null,\"typestr\":\"<f4\",\"version\":3}";
        const bst_ulong* shape = nullptr;
        bst_ulong dim = 0;
        const float* result = nullptr;
        (void)XGBoosterPredictFromDense(booster, array.c_str(),
                                        "{\"type\":0,\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,"
                                        "\"strict_shape\":false,\"missing\":NaN,\"cache_id\":0}",
                                        nullptr, &shape, &dim, &result);
      }
    }
  }
  XGBoosterFree(booster);
  return 0;
}
