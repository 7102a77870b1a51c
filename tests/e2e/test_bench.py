"""`berth bench URL --model NAME`: the closed-loop load generator end to end.

Runs the real `berth bench` against a real `berth serve` on loopback. Every
model here uses the `identity` backend, so no torch is needed except for the
one test marked `torch` (examples/models). Each run is well under a second of
load so that the module stays short.
"""
import csv
import io
import json
import subprocess

import pytest

from conftest import BERTH_BIN, Server, identity_config, write_model

# Short runs: enough requests on loopback for percentiles, little wall time.
FAST = ["--warmup", "0.1", "-d", "0.4"]

DATATYPES = ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
             "UINT64", "FP16", "FP32", "FP64", "BYTES"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("bench") / "models"
    repo.mkdir()
    write_model(repo, "idf", identity_config([("x", "FP32", [-1])]))
    # Not batched, so each shape starts with a fixed dim; the -1 comes from --shape or is 1.
    write_model(repo, "alltypes", identity_config([(dt.lower(), dt, [2, -1]) for dt in DATATYPES]))
    write_model(repo, "fixed", identity_config([("x", "INT32", [3])]))
    write_model(repo, "batched", identity_config([("x", "FP32", [4]), ("s", "BYTES", [-1])], mbs=8))
    write_model(repo, "fail", identity_config([("x", "FP32", [-1])], extra="warmup: {requests: 0}\n", fail="true"))
    write_model(repo, "slow", identity_config([("x", "FP32", [-1])], delay_ms="300"))
    s = Server(repo)
    yield s
    s.stop()


def bench(url, *args, timeout=30):
    return subprocess.run([str(BERTH_BIN), "bench", url, *args], capture_output=True, text=True,
                          timeout=timeout)


def bench_json(url, *args, expect_rc=0):
    p = bench(url, *args, "--format", "json")
    assert p.returncode == expect_rc, p.stdout + p.stderr
    records = json.loads(p.stdout)
    assert isinstance(records, list) and records, p.stdout
    return records


def assert_clean(rec):
    assert rec["errors"] == 0, rec
    assert rec["non_2xx"] == 0 and rec["status_counts"] == {}, rec
    assert rec["throughput_rps"] > 0, rec
    assert rec["requests"] > 0
    assert 0 < rec["p50_us"] <= rec["p90_us"] <= rec["p99_us"] <= rec["p999_us"] <= rec["max_us"], rec


def test_json_report_counts_requests_the_server_answered(server):
    (rec,) = bench_json(server.url, "-m", "idf", "-c", "2", "--warmup", "0.2", "-d", "1")
    assert_clean(rec)
    assert rec["connections"] == 2
    assert rec["duration_s"] == pytest.approx(1.0)
    # Closed loop: throughput is the completed requests over the window.
    assert rec["throughput_rps"] == pytest.approx(rec["requests"] / rec["duration_s"], rel=0.01)
    for key in ("connections", "requests", "duration_s", "throughput_rps", "p50_us", "p90_us", "p99_us",
                "p999_us", "max_us", "errors", "non_2xx"):
        assert key in rec
    assert server.alive()


def test_table_is_the_default_format(server):
    p = bench(server.url, "-m", "idf", *FAST)
    assert p.returncode == 0, p.stderr
    header, columns, row = p.stdout.splitlines()[:3]
    assert "model idf" in header and "json body" in header
    assert columns.split()[:4] == ["connections", "requests", "req/s", "rows/s"]
    assert "p99.9" in columns
    assert row.split()[0] == "1" and int(row.split()[1]) > 0


def test_concurrency_sweep_csv_has_one_row_per_level(server):
    p = bench(server.url, "-m", "idf", "--concurrency-range", "1:5:2", "--warmup", "0.1", "-d", "0.3",
              "--format", "csv")
    assert p.returncode == 0, p.stdout + p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert [int(r["connections"]) for r in rows] == [1, 3, 5]
    assert list(rows[0])[:11] == ["connections", "requests", "duration_s", "throughput_rps", "p50_us", "p90_us",
                                  "p99_us", "p999_us", "max_us", "errors", "non_2xx"]
    for r in rows:
        assert int(r["requests"]) > 0 and float(r["throughput_rps"]) > 0 and int(r["errors"]) == 0, r


@pytest.mark.parametrize("mode", [[], ["--binary"]], ids=["json", "binary"])
def test_every_datatype_is_synthesized(server, mode):
    # --check-outputs parses each answer: the server accepted and echoed every input.
    (rec,) = bench_json(server.url, "-m", "alltypes", "--check-outputs", "--shape", "fp32:2,3", *mode, *FAST)
    assert_clean(rec)
    assert rec["invalid_responses"] == 0


def test_batch_size_multiplies_rows(server):
    (rec,) = bench_json(server.url, "-m", "batched", "-b", "4", "--shape", "s:3", "--binary", *FAST)
    assert_clean(rec)
    assert rec["batch_size"] == 4
    assert rec["throughput_rows_per_s"] == pytest.approx(4 * rec["throughput_rps"], rel=0.01)


@pytest.mark.parametrize("mode", [[], ["--binary"]], ids=["json", "binary"])
def test_input_data_file(server, tmp_path, mode):
    body = tmp_path / "req.json"
    body.write_text(json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "data": [1, 2, 3]}]}))
    (rec,) = bench_json(server.url, "-m", "idf", "--input-data", str(body), "--check-outputs", *mode, *FAST)
    assert_clean(rec)


def test_server_errors_are_counted_never_successes(server):
    p = bench(server.url, "-m", "fail", *FAST, "--format", "json")
    assert p.returncode == 1, p.stdout + p.stderr
    (rec,) = json.loads(p.stdout)
    assert rec["requests"] > 0
    assert rec["errors"] == rec["requests"] == rec["non_2xx"] == rec["status_counts"]["500"], rec
    assert rec["throughput_rps"] == 0 and rec["max_us"] == 0, rec
    table = bench(server.url, "-m", "fail", *FAST)
    assert table.returncode == 1
    assert "status 500:" in table.stdout


def test_timeouts_are_counted_and_the_run_stays_bounded(server):
    p = bench(server.url, "-m", "slow", "--timeout-ms", "50", "-c", "2", *FAST, "--format", "json", timeout=10)
    assert p.returncode == 1, p.stdout + p.stderr
    (rec,) = json.loads(p.stdout)
    assert rec["timeouts"] > 0 and rec["errors"] == rec["timeouts"], rec


def test_unknown_model_is_a_usage_error(server):
    p = bench(server.url, "-m", "nosuchmodel", *FAST)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "nosuchmodel" in p.stderr and "404" in p.stderr and "unknown model" in p.stderr, p.stderr
    assert p.stdout == ""


def test_unreachable_server_is_a_usage_error(tmp_path):
    from conftest import free_port
    url = f"http://127.0.0.1:{free_port()}"
    p = bench(url, "-m", "idf", *FAST, timeout=10)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "unreachable" in p.stderr and url in p.stderr, p.stderr


@pytest.mark.parametrize("args, message", [
    (["-m", "idf", "--format", "yaml"], "--format"),
    (["-m", "idf", "--concurrency-range", "4:1"], "--concurrency-range"),
    (["-m", "idf", "-c", "2", "--concurrency-range", "1:2"], "not both"),
    (["-m", "idf", "--shape", "nosuch:3"], "no input 'nosuch'"),
    (["-m", "fixed", "-b", "2"], "takes no batch dimension"),
    (["-m", "alltypes", "--shape", "fp32:3,3"], "fixed at 2"),
    (["-m", "batched", "--shape", "x:5"], "fixed at 4"),
    (["-m", "idf", "-d", "0"], "--duration"),
    (["-m", "alltypes", "--shape", "fp32:2,100000000"], "larger than 256 MiB"),
    (["-m", "idf", "--input-data", "/nonexistent/req.json"], "cannot read"),
    (["--format", "json"], "--model"),
    (["-m", "idf", "-c", "x"], "--connections: expected a number"),
    (["-m", "idf", "--bogus"], "unexpected argument '--bogus'"),
])
def test_bad_usage_exits_2(server, args, message):
    p = bench(server.url, *args)
    assert p.returncode == 2, p.stdout + p.stderr
    assert message in p.stderr, p.stderr


def test_only_http_and_https_urls():
    p = bench("ftp://127.0.0.1:1", "-m", "idf")
    assert p.returncode == 2 and "only http:// and https://" in p.stderr, p.stderr
    p = bench("http://127.0.0.1:1", "-m", "idf", "--cacert", "/etc/hostname")
    assert p.returncode == 2 and "--cacert applies to https:// URLs only" in p.stderr, p.stderr


@pytest.mark.parametrize("model,extra", [("idf", []), ("batched", ["-b", "4", "--shape", "s:3"]),
                                         ("alltypes", ["--shape", "fp32:2,3"])])
def test_grpc_protocol(server, model, extra):
    # The gRPC port; the server counts what arrived over gRPC like any request.
    before = server.get(f"/v2/models/{model}/stats").json()["model_stats"][0]["inference_count"]
    (rec,) = bench_json(f"http://{server.grpc_target}", "--protocol", "grpc", "-m", model, "-c", "3", *extra, *FAST)
    assert_clean(rec)
    after = server.get(f"/v2/models/{model}/stats").json()["model_stats"][0]["inference_count"]
    assert after - before >= rec["requests"] * rec["batch_size"]
    p = bench(f"http://{server.grpc_target}", "--protocol", "grpc", "-m", "idf", *FAST)
    assert p.returncode == 0 and "grpc raw body" in p.stdout.splitlines()[0], p.stdout


def test_grpc_protocol_errors(server):
    (rec,) = bench_json(f"http://{server.grpc_target}", "--protocol", "grpc", "-m", "fail", *FAST, expect_rc=1)
    assert rec["errors"] == rec["non_2xx"] == rec["requests"] > 0, rec
    assert set(rec["status_counts"]) == {"13"}, rec  # INTERNAL, as the gRPC status code
    p = bench(f"http://{server.grpc_target}", "--protocol", "grpc", "-m", "nosuch")
    assert p.returncode == 2 and "nosuch" in p.stderr, p.stderr
    p = bench(f"http://{server.grpc_target}", "--protocol", "grpc", "-m", "idf", "--binary")
    assert p.returncode == 2 and "--binary applies to --protocol http" in p.stderr, p.stderr
    p = bench("http://127.0.0.1:1", "--protocol", "grpc", "-m", "idf", "--timeout-ms", "2000")
    assert p.returncode == 2 and "unreachable" in p.stderr, p.stderr


@pytest.mark.parametrize("model,extra", [("idf", []), ("batched", ["-b", "2", "--shape", "s:3"]),
                                         ("fixed", [])])
def test_tfserving_protocol(server, model, extra):
    # --check-outputs: every answer is TF Serving's {"outputs": ...}.
    (rec,) = bench_json(server.url, "--protocol", "tfserving", "-m", model, "--check-outputs", *extra, *FAST)
    assert_clean(rec)
    assert rec["invalid_responses"] == 0


def test_unknown_protocol_is_a_usage_error(server):
    p = bench(server.url, "--protocol", "thrift", "-m", "idf")
    assert p.returncode == 2 and "expected http, grpc or tfserving" in p.stderr, p.stderr


@pytest.mark.torch
def test_torchscript_mlp(examples_server):
    (rec,) = bench_json(examples_server.url, "-m", "mlp", "-b", "8", "-c", "2", *FAST)
    assert_clean(rec)
    assert rec["throughput_rows_per_s"] == pytest.approx(8 * rec["throughput_rps"], rel=0.01)
