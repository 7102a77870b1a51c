// KServe v2 gRPC messages <-> berth's InferRequest / InferResponse, and the
// one place where Status codes become gRPC status codes.
//
// Inputs arrive either typed (InferTensorContents: fp32_contents, ...) or raw
// (raw_input_contents, one entry per input, little-endian and packed; BYTES
// as 4-byte little-endian length + bytes, which is berth's own layout).
// Answers come in the form the request used: raw when it sent raw inputs
// (tritonclient reads raw_output_contents only), typed otherwise; FP16 has
// no typed field and is always raw.
#pragma once

#include <grpcpp/support/status.h>

#include <memory>
#include <string>

#include "berth/status.h"
#include "protocol/grpc/inference.pb.h"
#include "protocol/v2/v2_client_codec.h"
#include "request/infer_request.h"

namespace berth {

// What the decoder found out that the encoder needs.
struct GrpcRequestForm {
  bool raw = true;  // answer in raw_output_contents
};

// Decodes `in` (model name and version are the caller's). InvalidArgument
// names the input and what is wrong with it.
Result<std::unique_ptr<InferRequest>> DecodeGrpcInferRequest(const inference::ModelInferRequest& in,
                                                             GrpcRequestForm* form);

// Fills `out` from `response`, in the form the request used.
void EncodeGrpcInferResponse(InferResponse&& response, const GrpcRequestForm& form, inference::ModelInferResponse* out);

// The client side (remote pipeline steps): `req` as a ModelInferRequest
// with raw input contents (as tritonclient sends them; version 0 = the
// server's choice), and a ModelInferResponse back (raw or typed outputs).
void EncodeGrpcInferRequest(const InferRequest& req, const std::string& model, int64_t version,
                            inference::ModelInferRequest* out);
Result<InferResponse> DecodeGrpcInferResponse(const inference::ModelInferResponse& in);
// A ModelMetadata answer, as the HTTP client's DecodeModelMetadata gives it
// (remote pipeline steps, `berth bench --protocol grpc`). InvalidArgument for
// a tensor of unknown datatype.
Result<V2ModelMetadata> DecodeGrpcModelMetadata(const inference::ModelMetadataResponse& in);

// "" = the highest ready version (-1); else a non-negative integer.
Result<int64_t> ParseGrpcVersion(const std::string& version);

grpc::StatusCode GrpcCodeFor(StatusCode code);
StatusCode FromGrpcCode(grpc::StatusCode code);
grpc::Status ToGrpcStatus(const Status& status);

}  // namespace berth
