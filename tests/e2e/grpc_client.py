"""gRPC clients generated at test time from the protocol definitions real
clients use (tests/e2e/protocols: Triton's grpc_service.proto, which
tritonclient.grpc is built from, and the standard grpc.health.v1), with
Debian's python3-grpc-tools. Nothing here comes from berth's own .proto.
"""
import functools
import pathlib
import sys
import tempfile

import grpc
import numpy as np

PROTOS = pathlib.Path(__file__).resolve().parent / "protocols"
# tritonclient raises the limits to INT32_MAX; so do these clients.
CHANNEL_OPTIONS = [("grpc.max_send_message_length", 2**31 - 1), ("grpc.max_receive_message_length", 2**31 - 1)]

NP = {
    "BOOL": np.dtype("?"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
# The typed field of InferTensorContents for each datatype (none for FP16).
TYPED_FIELD = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}


def _generate(files, name):
    from grpc_tools import protoc
    out = tempfile.mkdtemp(prefix=f"berth-{name}-stubs-")
    args = ["protoc", f"-I{PROTOS}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        raise RuntimeError(f"grpc_tools.protoc failed on {files}")
    sys.path.insert(0, out)
    return out


@functools.lru_cache(maxsize=None)
def triton():
    """(grpc_service_pb2, grpc_service_pb2_grpc, health_pb2) from Triton's protos."""
    _generate(["grpc_service.proto", "model_config.proto", "health.proto"], "triton")
    import grpc_service_pb2
    import grpc_service_pb2_grpc
    import health_pb2
    return grpc_service_pb2, grpc_service_pb2_grpc, health_pb2


def kserve_stub_dir():
    """Generates KServe's stubs into a directory of their own (the package
    `inference` would clash with Triton's in one process)."""
    return _generate(["kserve_grpc_predict_v2.proto"], "kserve")


class Client:
    """The v2 service and grpc.health.v1 over one channel to `target`."""

    def __init__(self, target, token=None, compression=None, credentials=None):
        self.pb, pbg, self.health_pb = triton()
        if credentials is None:
            self.channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS, compression=compression)
        else:
            self.channel = grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS, compression=compression)
        self.stub = pbg.GRPCInferenceServiceStub(self.channel)
        self.metadata = [("authorization", f"Bearer {token}")] if token else None
        h = self.health_pb
        self._check = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                               request_serializer=h.HealthCheckRequest.SerializeToString,
                                               response_deserializer=h.HealthCheckResponse.FromString)
        # Triton's health.proto has Check only; Watch is the standard service's second method.
        self._watch = self.channel.unary_stream("/grpc.health.v1.Health/Watch",
                                                request_serializer=h.HealthCheckRequest.SerializeToString,
                                                response_deserializer=h.HealthCheckResponse.FromString)

    def close(self):
        self.channel.close()

    def call(self, rpc, request, **kw):
        kw.setdefault("timeout", 30)
        if self.metadata is not None:
            kw.setdefault("metadata", self.metadata)
        return getattr(self.stub, rpc)(request, **kw)

    def health(self, service="", timeout=10):
        return self._check(self.health_pb.HealthCheckRequest(service=service), timeout=timeout).status

    def watch(self, service="", timeout=30):
        return self._watch(self.health_pb.HealthCheckRequest(service=service), timeout=timeout)

    def serving_name(self, status):
        return self.health_pb.HealthCheckResponse.ServingStatus.Name(status)

    def infer_request(self, model, inputs, outputs=(), raw=True, version="", id="", **params):
        """inputs: [(name, datatype, np array or list of bytes for BYTES)]; as tritonclient builds it when raw."""
        req = self.pb.ModelInferRequest(model_name=model, model_version=version, id=id)
        for key, value in params.items():
            p = req.parameters[key]
            if isinstance(value, bool):
                p.bool_param = value
            elif isinstance(value, int):
                p.int64_param = value
            else:
                p.string_param = str(value)
        for name, dt, value in inputs:
            t = req.inputs.add(name=name, datatype=dt)
            if dt == "BYTES":
                arr = np.asarray(value, dtype=object)
                t.shape.extend(arr.shape)
                elems = [e if isinstance(e, bytes) else str(e).encode() for e in arr.ravel()]
                if raw:
                    req.raw_input_contents.append(serialize_bytes(elems))
                else:
                    t.contents.bytes_contents.extend(elems)
                continue
            arr = np.asarray(value, dtype=NP[dt])
            t.shape.extend(arr.shape)
            if raw:
                req.raw_input_contents.append(arr.tobytes())
            elif dt in TYPED_FIELD:  # FP16 has no typed field: left empty
                getattr(t.contents, TYPED_FIELD[dt]).extend(arr.ravel().tolist())
        for o in outputs:
            req.outputs.add(name=o)
        return req

    def infer(self, model, inputs, **kw):
        timeout = kw.pop("timeout", 30)
        return self.call("ModelInfer", self.infer_request(model, inputs, **kw), timeout=timeout)


def serialize_bytes(elems):
    """BYTES in raw form: 4-byte little-endian length + bytes per element (tritonclient's serialize_byte_tensor)."""
    return b"".join(len(e).to_bytes(4, "little") + e for e in elems)


def deserialize_bytes(raw):
    out, i = [], 0
    while i < len(raw):
        n = int.from_bytes(raw[i:i + 4], "little")
        out.append(raw[i + 4:i + 4 + n])
        i += 4 + n
    return out


def output_array(resp, index):
    """Output `index` of a ModelInferResponse as numpy (raw or typed form)."""
    o = resp.outputs[index]
    shape = list(o.shape)
    if len(resp.raw_output_contents) > 0:
        raw = resp.raw_output_contents[index]
        if o.datatype == "BYTES":
            return np.array(deserialize_bytes(raw), dtype=object).reshape(shape)
        return np.frombuffer(raw, dtype=NP[o.datatype]).reshape(shape)
    values = list(getattr(o.contents, TYPED_FIELD[o.datatype]))
    if o.datatype == "BYTES":
        return np.array(values, dtype=object).reshape(shape)
    return np.array(values, dtype=NP[o.datatype]).reshape(shape)
