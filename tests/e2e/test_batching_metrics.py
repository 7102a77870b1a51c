"""Dynamic batching, backpressure, timeouts and Prometheus metrics, end to end (identity backend)."""
import concurrent.futures
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import error_of, write_model

BATCHED = """\
backend: identity
max_batch_size: 16
inputs: [{name: x, datatype: INT32, shape: [2]}]
outputs: [{name: y, datatype: INT32, shape: [2]}]
instances: 1
dynamic_batching:
  max_queue_delay_us: 50000
  preferred_batch_sizes: [16]
parameters: {delay_ms: "20"}
"""

SMALL_QUEUE = """\
backend: identity
max_batch_size: 1
inputs: [{name: x, datatype: INT32, shape: [1]}]
outputs: [{name: y, datatype: INT32, shape: [1]}]
dynamic_batching: {max_queue_delay_us: 0, max_queue_size: 2}
parameters: {delay_ms: "400"}
"""

SLOW = """\
backend: identity
max_batch_size: 0
inputs: [{name: x, datatype: INT32, shape: [1]}]
outputs: [{name: y, datatype: INT32, shape: [1]}]
parameters: {delay_ms: "300"}
"""


def metrics(server):
    text = requests.get(server.metrics_url, timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(m, name, model, **extra):
    labels = {"model": model, "version": "1", **extra}
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import Server
    repo = tmp_path_factory.mktemp("batching") / "repo"
    write_model(repo, "batched", BATCHED)
    write_model(repo, "small_queue", SMALL_QUEUE)
    write_model(repo, "slow", SLOW)
    s = Server(repo)
    yield s
    s.stop()


def infer_rows(srv, model, first, rows):
    data = [[first + 2 * r, first + 2 * r + 1] for r in range(rows)]
    body = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [rows, 2], "data": data}]}
    r = requests.post(f"{srv.url}/v2/models/{model}/infer", json=body, timeout=30)
    return r, data


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(srv):
    before = metrics(srv)
    sizes = [1, 3, 2, 5, 1, 4, 2, 1, 3, 2, 1, 1]
    with concurrent.futures.ThreadPoolExecutor(len(sizes)) as pool:
        futures = [pool.submit(infer_rows, srv, "batched", 1000 * i, n) for i, n in enumerate(sizes)]
        results = [f.result() for f in futures]
    for (r, data), n in zip(results, sizes):
        assert r.status_code == 200, r.text
        out = r.json()["outputs"][0]
        assert out["shape"] == [n, 2]
        assert out["data"] == [v for row in data for v in row]
    after = metrics(srv)
    requests_done = sample(after, "berth_inference_request_success_total", "batched") - \
        sample(before, "berth_inference_request_success_total", "batched")
    executions = sample(after, "berth_inference_exec_count_total", "batched") - \
        sample(before, "berth_inference_exec_count_total", "batched")
    rows = sample(after, "berth_inference_count_total", "batched") - \
        sample(before, "berth_inference_count_total", "batched")
    assert requests_done == len(sizes)
    assert rows == sum(sizes)
    assert executions < len(sizes), "requests sent together should share executions"


def test_full_queue_answers_503_with_retry_after_at_once(srv):
    def call(i):
        t0 = time.time()
        body = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1, 1], "data": [i]}]}
        r = requests.post(f"{srv.url}/v2/models/small_queue/infer", json=body, timeout=30)
        return r, time.time() - t0

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    codes = sorted(r.status_code for r, _ in results)
    assert codes.count(200) >= 2 and codes.count(503) >= 1, codes
    for r, elapsed in results:
        if r.status_code == 503:
            assert r.headers.get("Retry-After"), r.headers
            assert "queue is full" in error_of(r)
            assert elapsed < 2.0, "a full queue must refuse at once, not wait"
    assert srv.alive()


def test_request_timeout_drops_requests_that_waited_too_long(srv):
    def call(timeout_us):
        body = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}],
                "parameters": {"timeout_us": timeout_us}}
        return requests.post(f"{srv.url}/v2/models/slow/infer", json=body, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        first = pool.submit(call, 10_000_000)
        time.sleep(0.05)
        late = pool.submit(call, 50_000)  # waits ~250 ms behind the first: past 50 ms
        r1, r2 = first.result(), late.result()
    assert r1.status_code == 200
    assert r2.status_code == 504, r2.text
    assert "past its timeout" in error_of(r2)
    bad = requests.post(f"{srv.url}/v2/models/slow/infer", timeout=10, json={
        "inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}], "parameters": {"timeout_us": "soon"}})
    assert bad.status_code == 400 and "timeout_us" in error_of(bad)


def test_metrics_endpoint_counts_successes_failures_and_latency(srv):
    before = metrics(srv)
    ok = requests.post(f"{srv.url}/v2/models/slow/infer", timeout=10,
                       json={"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [7]}]})
    assert ok.status_code == 200
    bad = requests.post(f"{srv.url}/v2/models/slow/infer", timeout=10,
                        json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [7]}]})
    assert bad.status_code == 400
    after = metrics(srv)

    def delta(name):
        return sample(after, name, "slow") - sample(before, name, "slow")

    assert delta("berth_inference_request_success_total") == 1
    assert delta("berth_inference_request_failure_total") == 1
    assert delta("berth_inference_exec_count_total") == 1
    assert delta("berth_request_duration_seconds_count") == 1
    assert delta("berth_request_duration_seconds_sum") >= 0.25  # the model sleeps 300 ms
    assert delta("berth_inference_compute_duration_us_total") >= 250_000
    assert sample(after, "berth_request_duration_seconds_bucket", "slow", le="+Inf") >= 1
    assert sample(after, "berth_batch_size_count", "slow") >= 1
    assert ("berth_queue_depth", (("model", "slow"), ("version", "1"))) in after
    names = {k[0] for k in after}
    for process_metric in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                           "process_start_time_seconds"):
        assert process_metric in names
    assert requests.get(srv.metrics_url.replace("/metrics", "/other"), timeout=5).status_code == 404


def test_dynamic_batching_config_errors_name_the_key(tmp_path, start_server):
    repo = tmp_path / "repo"
    write_model(repo, "ok", SLOW)
    write_model(repo, "unbatched", SLOW + "dynamic_batching: {max_queue_delay_us: 10}\n")
    write_model(repo, "bad_key", BATCHED.replace("max_queue_delay_us", "max_delay"))
    write_model(repo, "too_big", BATCHED.replace("preferred_batch_sizes: [16]", "preferred_batch_sizes: [32]"))
    s = start_server(repo)
    index = {e["name"]: e for e in s.post("/v2/repository/index").json()}
    assert index["ok"]["state"] == "READY"
    assert "max_batch_size > 0" in index["unbatched"]["reason"]
    assert "dynamic_batching.max_delay" in index["bad_key"]["reason"]
    assert "preferred_batch_sizes[0]" in index["too_big"]["reason"]
