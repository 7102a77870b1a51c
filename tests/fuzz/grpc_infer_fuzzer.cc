// The gRPC infer request as it arrives: protobuf bytes parsed into a
// ModelInferRequest, then decoded (typed contents or raw_input_contents,
// BYTES length prefixes, shapes against sizes); what decodes is encoded back
// in the request's form.
#include "fuzz_util.h"
#include "protocol/grpc/grpc_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inference::ModelInferRequest in;
  if (!in.ParseFromArray(data, static_cast<int>(size))) return 0;
  (void)berth::ParseGrpcVersion(in.model_version());
  berth::GrpcRequestForm form;
  auto request = berth::DecodeGrpcInferRequest(in, &form);
  if (!request.ok()) return 0;
  if (!*request) __builtin_trap();
  berth::InferResponse response;
  response.model_name = in.model_name();
  response.outputs = (*request)->inputs;  // as the identity backend answers
  response.binary.assign(response.outputs.size(), false);
  inference::ModelInferResponse out;
  berth::EncodeGrpcInferResponse(std::move(response), form, &out);
  return 0;
}
