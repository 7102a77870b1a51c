-- wrk script for bench/usecases.sh: POSTs the files listed (one path per line) in $BENCH_FILES in turn,
-- each as the raw body with Content-Type $BENCH_CONTENT_TYPE, and prints one machine-readable summary line.
local list = assert(os.getenv("BENCH_FILES"), "BENCH_FILES is not set")
local content_type = assert(os.getenv("BENCH_CONTENT_TYPE"), "BENCH_CONTENT_TYPE is not set")
local path = assert(os.getenv("BENCH_PATH"), "BENCH_PATH is not set")
local requests = {}

-- In init, not at load time: wrk.format takes the Host header from wrk.host, which is set by then.
function init(_)
  for name in io.lines(list) do
    local f = assert(io.open(name, "rb"))
    local body = f:read("*a")
    f:close()
    requests[#requests + 1] = wrk.format("POST", path, { ["Content-Type"] = content_type }, body)
  end
  assert(#requests > 0, "no files listed in " .. list)
end

local next_one = 0

function request()
  next_one = next_one % #requests + 1
  return requests[next_one]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "BENCH_WRK requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
    "lat_p50_us=%d lat_p90_us=%d lat_p99_us=%d\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
