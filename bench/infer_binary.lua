-- wrk script for bench/serve_transformer.sh: POSTs the binary-tensor v2 body
-- in $BENCH_BODY_FILE (JSON header + raw tensor bytes) with the header
-- Inference-Header-Content-Length: $BENCH_HEADER_LENGTH on every request and
-- prints one machine-readable summary line at the end (same as infer.lua).
local path = os.getenv("BENCH_BODY_FILE")
local hlen = os.getenv("BENCH_HEADER_LENGTH")
assert(path, "BENCH_BODY_FILE is not set")
assert(hlen, "BENCH_HEADER_LENGTH is not set")
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = hlen

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_WRK requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
    "lat_p50_us=%d lat_p90_us=%d lat_p99_us=%d\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
