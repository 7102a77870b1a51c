"""Model control: version policies, poll and explicit modes, admin and inference
bearer tokens, warm-up, and config errors for the keys behind them.

Identity backend only (output i = input i), so versions are told apart by the
`model_version` of infer answers, model metadata `versions`, the per-version
ready endpoints and the repository index.
"""
import http.client
import os
import pathlib
import shutil
import threading
import time

import pytest
import requests

from conftest import error_of, write_model

TOKEN = "s3cr3t-admin-7f1c2b9e"
AUTH = "inference-tok-94a0d3e1"
POLL = ["--model-control-mode", "poll", "--repository-poll-secs", "1"]


def identity_yaml(delay_ms=None, fail=False, extra="", instances=1):
    params = {}
    if delay_ms is not None:
        params["delay_ms"] = str(delay_ms)
    if fail:
        params["fail"] = "true"
    params_yaml = "{" + ", ".join(f'{k}: "{v}"' for k, v in params.items()) + "}"
    return f"""\
backend: identity
max_batch_size: 0
inputs:
  - {{name: x, datatype: INT32, shape: [-1]}}
outputs:
  - {{name: y, datatype: INT32, shape: [-1]}}
instances: {instances}
parameters: {params_yaml}
{extra}"""


def body(values):
    return {"inputs": [{"name": "x", "datatype": "INT32", "shape": [len(values)], "data": list(values)}]}


def infer_ok(s, model, values=(1, 2, 3), version=None, **kw):
    """Infers and checks the identity answer; returns the model_version served."""
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    r = s.post(path, json=body(values), **kw)
    assert r.status_code == 200, (path, r.status_code, r.text)
    out = r.json()
    assert out["model_name"] == model, out
    assert out["outputs"][0]["data"] == list(values), out
    if version:
        assert out["model_version"] == str(version), out
    return out["model_version"]


def index(s, **kw):
    r = s.post("/v2/repository/index", **kw)
    assert r.status_code == 200, r.text
    return r.json()


def rows(s, model, **kw):
    return [e for e in index(s, **kw) if e["name"] == model]


def versions_of(s, model):
    r = s.get(f"/v2/models/{model}")
    assert r.status_code == 200, r.text
    return r.json()["versions"]


def wait_for(pred, timeout=8.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def write_atomic(path, text):
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def raw_request(s, method, path, headers=None):
    """Sends `path` exactly as given (requests would normalise dot segments)."""
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    try:
        conn.request(method, path, body=b"", headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------
# version_policy


def test_version_policies(tmp_path, start_server):
    repo = tmp_path / "models"
    write_model(repo, "dflt", identity_yaml(), versions=(1, 2, 3))
    write_model(repo, "latest2", identity_yaml(extra="version_policy: {latest: 2}\n"), versions=(1, 2, 3))
    write_model(repo, "all", identity_yaml(extra="version_policy: all\n"), versions=(1, 2, 10))
    write_model(repo, "spec", identity_yaml(extra="version_policy: {specific: [1, 3]}\n"), versions=(1, 2, 3, 4))
    write_model(repo, "spec_missing", identity_yaml(extra="version_policy: {specific: [2, 7]}\n"), versions=(1, 2))
    write_model(repo, "spec_none", identity_yaml(extra="version_policy: {specific: [5]}\n"), versions=(1, 2))
    # not version directories: ignored
    (repo / "dflt" / "0").mkdir()
    (repo / "dflt" / "007").mkdir()
    (repo / "dflt" / "latest").mkdir()
    (repo / "dflt" / "99").write_text("a file, not a directory")
    s = start_server(repo)

    expect = {"dflt": ["3"], "latest2": ["2", "3"], "all": ["1", "2", "10"], "spec": ["1", "3"],
              "spec_missing": ["2"]}
    for model, versions in expect.items():
        assert versions_of(s, model) == versions, model
        # no version: the highest ready one
        assert infer_ok(s, model) == versions[-1], model
        for v in versions:
            assert s.get(f"/v2/models/{model}/versions/{v}/ready").status_code == 200, (model, v)
            assert infer_ok(s, model, (7, int(v)), version=v) == v
            meta = s.get(f"/v2/models/{model}/versions/{v}")
            assert meta.status_code == 200 and meta.json()["name"] == model
        got = rows(s, model)
        assert sorted((e["version"], e["state"]) for e in got) == sorted((v, "READY") for v in versions), got

    # versions on disk that the policy leaves out, and versions not on disk: 404
    for model, v in [("dflt", 1), ("dflt", 2), ("latest2", 1), ("spec", 2), ("spec", 4), ("spec_missing", 7),
                     ("dflt", 99), ("dflt", 4)]:
        for suffix in ("", "/ready"):
            r = s.get(f"/v2/models/{model}/versions/{v}{suffix}")
            assert r.status_code == 404, (model, v, suffix, r.status_code, r.text)
        r = s.infer(model, body([1])["inputs"], version=v)
        assert r.status_code == 404, (model, v, r.text)
        assert str(v) in error_of(r)

    # a policy that selects nothing on disk: UNAVAILABLE with a reason, 503 for it and its versions
    got = rows(s, "spec_none")
    assert len(got) == 1 and got[0]["state"] == "UNAVAILABLE", got
    assert "version_policy" in got[0]["reason"], got
    assert s.get("/v2/models/spec_none/ready").status_code == 503
    assert s.get("/v2/models/spec_none/versions/2").status_code == 503
    r = s.infer("spec_none", body([1])["inputs"])
    assert r.status_code == 503 and "version_policy" in error_of(r)
    # everything else is still serving: the server is ready
    assert s.get("/v2/health/ready").status_code == 200


@pytest.mark.parametrize("snippet,key", [
    ("version_policy: newest\n", "version_policy"),
    ("version_policy: {latest: 0}\n", "version_policy.latest"),
    ("version_policy: {newest: 1}\n", "version_policy"),
    ("version_policy: {specific: []}\n", "version_policy.specific"),
    ("version_policy: {specific: [0]}\n", "version_policy.specific"),
    ("warmup: {rounds: 1}\n", "warmup.rounds"),
    ("warmup: 3\n", "warmup"),
    ("warmup: {requests: -1}\n", "warmup.requests"),
])
def test_config_errors_for_new_keys(tmp_path, start_server, snippet, key):
    repo = tmp_path / "models"
    write_model(repo, "bad", identity_yaml(extra=snippet), versions=(1, 2))
    write_model(repo, "good", identity_yaml())
    s = start_server(repo)
    got = rows(s, "bad")
    assert got and all(e["state"] == "UNAVAILABLE" for e in got), got
    for e in got:
        assert "model.yaml" in e["reason"] and key in e["reason"], e
    r = s.infer("bad", body([1])["inputs"])
    assert r.status_code == 503
    assert key in error_of(r)
    assert s.get("/v2/models/bad/versions/1/ready").status_code == 503
    infer_ok(s, "good")


# --------------------------------------------------------------------------
# poll mode


def load_loop(s, model, stop, deadline, results, idx):
    """Sends requests on one keep-alive session until `stop` or `deadline`;
    records (status, model_version or error text, ok data)."""
    sess = requests.Session()
    n = 0
    while not stop.is_set() and time.monotonic() < deadline:
        values = [idx, n, n * 7 % 1000]
        n += 1
        try:
            r = sess.post(f"{s.url}/v2/models/{model}/infer", json=body(values), timeout=10)
        except requests.RequestException as e:  # noqa: PERF203
            results.append((None, repr(e), False))
            continue
        if r.status_code != 200:
            results.append((r.status_code, r.text, False))
            continue
        out = r.json()
        results.append((200, out["model_version"], out["outputs"][0]["data"] == values))
    sess.close()


def test_poll_new_versions_under_load_fail_nothing(tmp_path, start_server):
    repo = tmp_path / "models"
    mdir = write_model(repo, "m", identity_yaml(delay_ms=3, instances=2, extra="warmup: {requests: 2}\n"),
                       versions=(1,))
    s = start_server(repo, POLL)
    assert versions_of(s, "m") == ["1"]

    stop = threading.Event()
    deadline = time.monotonic() + 20  # hard bound on the load, whatever happens
    per_thread = [[] for _ in range(4)]
    threads = [threading.Thread(target=load_loop, args=(s, "m", stop, deadline, per_thread[i], i), daemon=True)
               for i in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        (mdir / "2").mkdir()
        wait_for(lambda: any(r[1] == "2" for res in per_thread for r in res[-5:]), timeout=6,
                 what="version 2 to serve")
        wait_for(lambda: versions_of(s, "m") == ["2"], timeout=6, what="version 1 to be retired")
        time.sleep(0.3)
        (mdir / "3").mkdir()
        wait_for(lambda: any(r[1] == "3" for res in per_thread for r in res[-5:]), timeout=6,
                 what="version 3 to serve")
        wait_for(lambda: versions_of(s, "m") == ["3"], timeout=6, what="version 2 to be retired")
        # a config change reloads version 3 in place
        write_atomic(mdir / "model.yaml", identity_yaml(delay_ms=4, instances=3, extra="warmup: {requests: 2}\n"))
        wait_for(lambda: s.logs().count("'m' version 3: READY") >= 2, timeout=6, what="version 3 reloaded")
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert not any(t.is_alive() for t in threads)

    total = sum(len(r) for r in per_thread)
    bad = [r for res in per_thread for r in res if r[0] != 200 or not r[2]]
    assert total > 100, total
    assert not bad, f"{len(bad)} of {total} requests failed, e.g. {bad[:5]}"
    seen = {r[1] for res in per_thread for r in res}
    assert {"1", "2", "3"} <= seen, seen
    # each client sees versions only move forward
    for res in per_thread:
        vs = [int(r[1]) for r in res]
        assert vs == sorted(vs), vs

    got = rows(s, "m")
    assert [(e["version"], e["state"]) for e in got] == [("3", "READY")], got
    for v in (1, 2):
        assert s.get(f"/v2/models/m/versions/{v}/ready").status_code == 404
    wait_for(lambda: "version 1: retired" in s.logs() and "version 2: retired" in s.logs(), timeout=5,
             what="retired versions to be stopped")


def test_poll_adds_and_removes_models_and_versions(tmp_path, start_server):
    repo = tmp_path / "models"
    write_model(repo, "keep", identity_yaml())
    mdir = write_model(repo, "multi", identity_yaml(extra="version_policy: all\n"), versions=(1, 2))
    s = start_server(repo, POLL)
    assert [e["name"] for e in index(s)] == ["keep", "multi", "multi"]

    # a new model directory, moved into place whole
    staging = tmp_path / "staging"
    write_model(staging, "fresh", identity_yaml(), versions=(4,))
    os.rename(staging / "fresh", repo / "fresh")
    wait_for(lambda: s.get("/v2/models/fresh/ready").status_code == 200, what="new model READY")
    assert infer_ok(s, "fresh") == "4"
    assert [(e["version"], e["state"]) for e in rows(s, "fresh")] == [("4", "READY")]

    # a version directory removed under policy `all`
    shutil.rmtree(mdir / "2")
    wait_for(lambda: versions_of(s, "multi") == ["1"], what="version 2 to go")
    assert infer_ok(s, "multi") == "1"
    assert s.get("/v2/models/multi/versions/2/ready").status_code == 404

    # the model directory removed: 404 everywhere, gone from the index
    shutil.rmtree(repo / "fresh")
    wait_for(lambda: s.get("/v2/models/fresh/ready").status_code == 404, what="removed model 404")
    assert s.infer("fresh", body([1])["inputs"]).status_code == 404
    assert s.get("/v2/models/fresh").status_code == 404
    assert not rows(s, "fresh")
    # and it comes back when its directory does
    write_model(staging, "fresh", identity_yaml(), versions=(5,))
    os.rename(staging / "fresh", repo / "fresh")
    wait_for(lambda: s.get("/v2/models/fresh/ready").status_code == 200, what="re-added model READY")
    assert infer_ok(s, "fresh") == "5"

    infer_ok(s, "keep")
    assert s.get("/v2/health/ready").status_code == 200


def test_poll_broken_model_yaml_keeps_serving_then_recovers(tmp_path, start_server):
    repo = tmp_path / "models"
    good = identity_yaml()
    mdir = write_model(repo, "m", good)
    s = start_server(repo, POLL)
    assert infer_ok(s, "m") == "1"

    # 1. model.yaml no longer parses / names an unknown key: the model-level reason, version 1 serves on
    write_atomic(mdir / "model.yaml", good + "nonsense_key: 1\n")
    got = wait_for(lambda: [e for e in rows(s, "m") if e["reason"]], what="a reason in the index")
    assert len(got) == 1 and got[0]["version"] == "1" and got[0]["state"] == "READY", got
    assert "model.yaml" in got[0]["reason"] and "nonsense_key" in got[0]["reason"], got
    for _ in range(20):
        assert infer_ok(s, "m") == "1"
    assert s.get("/v2/models/m/ready").status_code == 200
    assert versions_of(s, "m") == ["1"]

    write_atomic(mdir / "model.yaml", good)
    wait_for(lambda: rows(s, "m") and not rows(s, "m")[0]["reason"], what="the reason to clear")
    assert [(e["version"], e["state"], e["reason"]) for e in rows(s, "m")] == [("1", "READY", "")]
    assert infer_ok(s, "m") == "1"

    # 2. model.yaml valid but the version fails to load (warm-up fails): reload failed, old files serve
    write_atomic(mdir / "model.yaml", identity_yaml(fail=True, extra="warmup: {requests: 1}\n"))
    got = wait_for(lambda: [e for e in rows(s, "m") if e["reason"]], what="reload failure in the index")
    assert got[0]["state"] == "READY", got
    assert "reload failed" in got[0]["reason"] and "warm-up" in got[0]["reason"], got
    for _ in range(20):
        assert infer_ok(s, "m") == "1"

    # 3. a valid, different config: loads and replaces the serving one (now with a delay)
    write_atomic(mdir / "model.yaml", identity_yaml(delay_ms=150))
    wait_for(lambda: rows(s, "m") and not rows(s, "m")[0]["reason"], what="recovery")
    t0 = time.monotonic()
    assert infer_ok(s, "m") == "1"
    assert time.monotonic() - t0 >= 0.14, "the new model.yaml is not the one serving"

    # 4. model.yaml deleted: the loaded version keeps serving, the index says why
    (mdir / "model.yaml").unlink()
    got = wait_for(lambda: [e for e in rows(s, "m") if e["reason"]], what="missing model.yaml reason")
    assert "model.yaml" in got[0]["reason"], got
    assert infer_ok(s, "m") == "1"


def test_poll_version_policy_change(tmp_path, start_server):
    repo = tmp_path / "models"
    mdir = write_model(repo, "m", identity_yaml(), versions=(1, 2, 3))
    s = start_server(repo, POLL)
    assert versions_of(s, "m") == ["3"]
    write_atomic(mdir / "model.yaml", identity_yaml(extra="version_policy: all\n"))
    wait_for(lambda: versions_of(s, "m") == ["1", "2", "3"], what="policy all")
    write_atomic(mdir / "model.yaml", identity_yaml(extra="version_policy: {specific: [1]}\n"))
    wait_for(lambda: versions_of(s, "m") == ["1"], what="policy specific [1]")
    assert infer_ok(s, "m") == "1"
    assert s.get("/v2/models/m/versions/3/ready").status_code == 404
    assert [e["version"] for e in rows(s, "m")] == ["1"]


def test_poll_failing_new_version_does_not_take_down_serving_one(tmp_path, start_server):
    """A new version directory arrives together with a model.yaml under which it
    cannot load (its warm-up fails). Version 1 is serving; the failed load of
    version 2 must not retire it ("a version that fails to (re)load never takes
    down one that is serving")."""
    repo = tmp_path / "models"
    mdir = write_model(repo, "m", identity_yaml())
    s = start_server(repo, POLL)
    assert infer_ok(s, "m") == "1"
    write_atomic(mdir / "model.yaml", identity_yaml(fail=True, extra="warmup: {requests: 1}\n"))
    (mdir / "2").mkdir()
    wait_for(lambda: any(e["version"] == "2" and e["state"] == "UNAVAILABLE" for e in rows(s, "m")),
             what="version 2 to fail")
    time.sleep(1.5)  # another poll
    got = rows(s, "m")
    assert any("warm-up" in e["reason"] for e in got), got
    r = s.infer("m", body([1, 2])["inputs"])
    assert r.status_code == 200, f"the model went down after version 2 failed to load: {r.status_code} {r.text}; " \
                                 f"index {got}"
    assert r.json()["model_version"] == "1"


# --------------------------------------------------------------------------
# explicit mode and the admin token


def explicit_repo(tmp_path):
    repo = tmp_path / "models"
    write_model(repo, "a", identity_yaml())
    write_model(repo, "b", identity_yaml(delay_ms=400, instances=2))
    write_model(repo, "c", identity_yaml(), versions=(1, 2))
    token_file = tmp_path / "admin.token"
    token_file.write_text(f"  {TOKEN}\n")
    return repo, token_file


def test_explicit_mode_load_unload(tmp_path, start_server):
    repo, token_file = explicit_repo(tmp_path)
    s = start_server(repo, ["--model-control-mode", "explicit", "--load-model", "a", "--load-model", "c",
                            "--admin-token-file", str(token_file)])
    assert sorted({e["name"] for e in index(s)}) == ["a", "c"]
    assert infer_ok(s, "a") == "1"
    assert infer_ok(s, "c") == "2"
    assert s.get("/v2/models/b/ready").status_code == 404
    assert s.infer("b", body([1])["inputs"]).status_code == 404

    # missing, wrong, malformed tokens: 401 with WWW-Authenticate, nothing loads
    for headers in [{}, bearer("wrong"), bearer(TOKEN + "x"), bearer(TOKEN[:-1]), {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"}, bearer("")]:
        for action in ("load", "unload"):
            r = s.post(f"/v2/repository/models/b/{action}", headers=headers)
            assert r.status_code == 401, (headers, action, r.status_code, r.text)
            assert "bearer" in r.headers.get("WWW-Authenticate", "").lower(), r.headers
            error_of(r)
    assert s.get("/v2/models/b/ready").status_code == 404
    assert infer_ok(s, "a") == "1"

    # the right token loads
    r = s.post("/v2/repository/models/b/load", headers=bearer(TOKEN))
    assert r.status_code == 200, r.text
    assert s.get("/v2/models/b/ready").status_code == 200
    assert [(e["version"], e["state"]) for e in rows(s, "b")] == [("1", "READY")]
    assert infer_ok(s, "b", (4, 5)) == "1"
    # loading again is harmless
    assert s.post("/v2/repository/models/b/load", headers=bearer(TOKEN)).status_code == 200
    assert infer_ok(s, "b", (6,)) == "1"

    # unload while a request is in flight: that request still finishes
    result = {}

    def slow():
        try:
            result["r"] = s.infer("b", body([9, 8])["inputs"])
        except Exception as e:  # noqa: BLE001
            result["e"] = repr(e)

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    time.sleep(0.15)
    r = s.post("/v2/repository/models/b/unload", headers=bearer(TOKEN))
    assert r.status_code == 200, r.text
    t.join(timeout=10)
    assert "r" in result, result
    assert result["r"].status_code == 200 and result["r"].json()["outputs"][0]["data"] == [9, 8], result["r"].text

    r = s.infer("b", body([1])["inputs"])
    assert r.status_code in (503, 404), r.text
    assert s.get("/v2/models/b/ready").status_code in (503, 404)
    assert s.get("/v2/models/b/versions/1/ready").status_code in (503, 404)
    got = rows(s, "b")
    assert got and all(e["state"] != "READY" for e in got), got
    assert any(e["reason"] == "unloaded" for e in got), got
    assert infer_ok(s, "a") == "1"
    wait_for(lambda: "'b' version 1: retired" in s.logs(), timeout=5, what="b retired")

    # and back again
    assert s.post("/v2/repository/models/b/load", headers=bearer(TOKEN)).status_code == 200
    assert infer_ok(s, "b") == "1"
    assert [(e["version"], e["state"], e["reason"]) for e in rows(s, "b")] == [("1", "READY", "")]

    # unknown directories, invalid names, traversal: never 200
    r = s.post("/v2/repository/models/nope/load", headers=bearer(TOKEN))
    assert r.status_code == 404, r.text
    assert "nope" in error_of(r)
    assert s.post("/v2/repository/models/nope/unload", headers=bearer(TOKEN)).status_code == 404
    assert not rows(s, "nope")
    for name in ["..", ".", "../models", "..%2Fmodels", "a%2Fb", "a%2F..%2Fa", "%2e%2e", "a%20b", "~", "a;b"]:
        for action in ("load", "unload"):
            status, data = raw_request(s, "POST", f"/v2/repository/models/{name}/{action}", bearer(TOKEN))
            assert status in (400, 404), (name, action, status, data)
    status, _ = raw_request(s, "POST", "/v2/repository/models/../../x/load", bearer(TOKEN))
    assert status in (400, 404)
    assert sorted({e["name"] for e in index(s)}) == ["a", "b", "c"]

    # wrong method
    r = s.get("/v2/repository/models/b/load", headers=bearer(TOKEN))
    assert r.status_code == 405

    # unload, then load of c: both versions again with default policy (latest 1)
    assert s.post("/v2/repository/models/c/unload", headers=bearer(TOKEN)).status_code == 200
    assert s.infer("c", body([1])["inputs"]).status_code in (503, 404)
    assert s.post("/v2/repository/models/c/load", headers=bearer(TOKEN)).status_code == 200
    assert infer_ok(s, "c") == "2"
    assert versions_of(s, "c") == ["2"]

    # a reload whose model.yaml is broken answers the error; the loaded version keeps serving
    good_c = (repo / "c" / "model.yaml").read_text()
    write_atomic(repo / "c" / "model.yaml", good_c + "bogus: 1\n")
    r = s.post("/v2/repository/models/c/load", headers=bearer(TOKEN))
    assert r.status_code == 400 and "bogus" in error_of(r), r.text
    assert infer_ok(s, "c") == "2"
    assert "bogus" in rows(s, "c")[0]["reason"]
    write_atomic(repo / "c" / "model.yaml", good_c)
    assert s.post("/v2/repository/models/c/load", headers=bearer(TOKEN)).status_code == 200
    assert [(e["version"], e["state"], e["reason"]) for e in rows(s, "c")] == [("2", "READY", "")]

    # a model directory that is a symlink leaving the repository: refused
    outside = tmp_path / "outside"
    write_model(outside, "esc", identity_yaml())
    (repo / "esc").symlink_to(outside / "esc")
    r = s.post("/v2/repository/models/esc/load", headers=bearer(TOKEN))
    assert r.status_code in (400, 403, 404), r.text
    assert s.infer("esc", body([1])["inputs"]).status_code in (404, 503)

    # the token never reaches the log
    assert s.alive()
    logs = s.logs()
    assert TOKEN not in logs
    assert "unloaded" in logs  # the log is the real one


def test_explicit_mode_load_of_broken_model(tmp_path, start_server):
    repo, token_file = explicit_repo(tmp_path)
    write_model(repo, "broken", identity_yaml(extra="version_policy: newest\n"))
    write_model(repo, "warmfail", identity_yaml(fail=True, extra="warmup: {requests: 2}\n"))
    s = start_server(repo, ["--model-control-mode", "explicit", "--admin-token-file", str(token_file)])
    assert index(s) == []
    assert s.get("/v2/health/ready").status_code == 200
    r = s.post("/v2/repository/models/broken/load", headers=bearer(TOKEN))
    assert r.status_code >= 400 and r.status_code != 401, r.text
    assert "version_policy" in error_of(r)
    got = rows(s, "broken")
    assert got and got[0]["state"] == "UNAVAILABLE" and "version_policy" in got[0]["reason"], got
    r = s.post("/v2/repository/models/warmfail/load", headers=bearer(TOKEN))
    assert r.status_code >= 400, r.text
    assert "warm-up" in error_of(r)
    got = rows(s, "warmfail")
    assert got and got[0]["state"] == "UNAVAILABLE" and "warm-up" in got[0]["reason"], got
    assert s.infer("warmfail", body([1])["inputs"]).status_code == 503


def test_explicit_mode_bad_load_model_names_are_reported(tmp_path, start_server):
    """`--load-model` naming no model directory (a typo) or an invalid name must
    not pass silently: the log (or the index) has to say so."""
    repo, token_file = explicit_repo(tmp_path)
    s = start_server(repo, ["--model-control-mode", "explicit", "--load-model", "a",
                            "--load-model", "typo_model", "--load-model", "../models/b"])
    infer_ok(s, "a")
    assert s.get("/v2/models/b/ready").status_code == 404
    said = s.logs() + repr(index(s))
    assert "typo_model" in said, s.logs()
    assert "../models/b" in said, s.logs()


def test_symlink_leaving_repository_has_a_reason(tmp_path, start_server):
    repo = tmp_path / "models"
    write_model(repo, "m", identity_yaml())
    outside = tmp_path / "outside"
    write_model(outside, "esc", identity_yaml())
    (repo / "esc").symlink_to(outside / "esc")
    s = start_server(repo, POLL)
    infer_ok(s, "m")
    got = rows(s, "esc")
    assert all(e["state"] != "READY" for e in got), got
    assert s.infer("esc", body([1])["inputs"]).status_code in (404, 503)
    # if it is listed, it says why
    for e in got:
        assert "outside" in e["reason"], got


def test_startup_refuses_bad_control_options(tmp_path, start_server):
    repo = tmp_path / "models"
    write_model(repo, "m", identity_yaml())
    empty = tmp_path / "empty.token"
    empty.write_text(" \n")
    for args, said in [(["--model-control-mode", "poll", "--load-model", "m"], "--load-model"),
                       (["--load-model", "m"], "--load-model"),
                       (["--admin-token-file", str(tmp_path / "missing")], "missing"),
                       (["--auth-token-file", str(empty)], "empty"),
                       (["--model-control-mode", "sometimes"], "model-control-mode")]:
        with pytest.raises(RuntimeError) as exc:
            start_server(repo, args)
        assert said in str(exc.value), (args, str(exc.value))


def test_explicit_load_unload_churn_under_load(tmp_path, start_server):
    repo, token_file = explicit_repo(tmp_path)
    write_model(repo, "d", identity_yaml(delay_ms=2, instances=2, extra="warmup: {requests: 1}\n"))
    s = start_server(repo, ["--model-control-mode", "explicit", "--load-model", "a",
                            "--admin-token-file", str(token_file)])
    stop = threading.Event()
    deadline = time.monotonic() + 10
    per_thread = [[] for _ in range(3)]
    threads = [threading.Thread(target=load_loop, args=(s, "d", stop, deadline, per_thread[i], i), daemon=True)
               for i in range(3)]
    for t in threads:
        t.start()
    control = []
    try:
        t_end = time.monotonic() + 2.5
        while time.monotonic() < t_end:
            for action in ("load", "unload"):
                control.append(s.post(f"/v2/repository/models/d/{action}", headers=bearer(TOKEN)).status_code)
                time.sleep(0.03)
        control.append(s.post("/v2/repository/models/d/load", headers=bearer(TOKEN)).status_code)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert set(control) == {200}, control
    results = [r for res in per_thread for r in res]
    statuses = {r[0] for r in results}
    assert statuses <= {200, 503, 404}, [r for r in results if r[0] not in (200, 503, 404)][:5]
    ok = [r for r in results if r[0] == 200]
    assert ok and all(r[2] and r[1] == "1" for r in ok)
    assert s.alive()
    assert infer_ok(s, "d") == "1"
    infer_ok(s, "a")


def test_model_control_refused_without_admin_token_or_explicit_mode(tmp_path, start_server):
    repo, token_file = explicit_repo(tmp_path)
    # explicit mode but no admin token configured: 403 whatever is sent
    s = start_server(repo, ["--model-control-mode", "explicit", "--load-model", "a"])
    for headers in [{}, bearer(TOKEN), bearer("anything")]:
        for action in ("load", "unload"):
            r = s.post(f"/v2/repository/models/b/{action}", headers=headers)
            assert r.status_code == 403, (headers, r.status_code, r.text)
            error_of(r)
    assert s.get("/v2/models/b/ready").status_code == 404
    assert infer_ok(s, "a") == "1"

    # poll and none modes with the admin token configured: the right token still gets 403
    for mode in (["--model-control-mode", "none"], POLL, []):
        s2 = start_server(repo, [*mode, "--admin-token-file", str(token_file)])
        for model, action in [("b", "unload"), ("a", "unload"), ("nope", "load"), ("b", "load")]:
            r = s2.post(f"/v2/repository/models/{model}/{action}", headers=bearer(TOKEN))
            assert r.status_code == 403, (mode, model, action, r.status_code, r.text)
            r = s2.post(f"/v2/repository/models/{model}/{action}", headers=bearer("wrong"))
            assert r.status_code in (401, 403), (mode, r.status_code)
        infer_ok(s2, "b")  # nothing was unloaded
        infer_ok(s2, "a")
        assert TOKEN not in s2.logs()


# --------------------------------------------------------------------------
# inference auth token


def test_auth_token_guards_everything_but_health(tmp_path, start_server):
    repo = tmp_path / "models"
    write_model(repo, "m", identity_yaml())
    tok = tmp_path / "auth.token"
    tok.write_text(AUTH + "\n")
    s = start_server(repo, ["--auth-token-file", str(tok)])

    infer = ("POST", "/v2/models/m/infer", body([1, 2]))
    guarded = [("GET", "/v2", None), ("GET", "/v2/models/m", None), ("GET", "/v2/models/m/ready", None),
               ("GET", "/v2/models/m/versions/1", None), ("GET", "/v2/models/m/versions/1/ready", None), infer,
               ("POST", "/v2/models/m/versions/1/infer", body([3])), ("POST", "/v2/repository/index", None),
               ("GET", "/v2/models/nope", None), ("GET", "/v2/nope", None), ("GET", "/v2/health", None)]
    for headers in [{}, bearer("wrong"), {"Authorization": AUTH}, {"Authorization": f"Basic {AUTH}"},
                    bearer(TOKEN)]:
        for method, path, js in guarded:
            r = requests.request(method, s.url + path, json=js, headers=headers, timeout=10)
            assert r.status_code == 401, (headers, method, path, r.status_code, r.text)
            assert "bearer" in r.headers.get("WWW-Authenticate", "").lower(), (path, r.headers)
            assert "data" not in r.text

    for path in ("/v2/health/live", "/v2/health/ready"):
        assert requests.get(s.url + path, timeout=10).status_code == 200
        assert requests.get(s.url + path, headers=bearer("wrong"), timeout=10).status_code == 200

    h = bearer(AUTH)
    assert infer_ok(s, "m", (1, 2), headers=h) == "1"
    assert infer_ok(s, "m", (3,), version=1, headers=h) == "1"
    assert s.get("/v2", headers=h).status_code == 200
    assert s.get("/v2/models/m", headers=h).json()["versions"] == ["1"]
    assert s.get("/v2/models/m/ready", headers=h).status_code == 200
    assert [e["name"] for e in index(s, headers=h)] == ["m"]
    assert s.get("/v2/models/nope", headers=h).status_code == 404
    # the scheme is case-insensitive
    assert s.post("/v2/models/m/infer", json=body([5]), headers={"Authorization": f"bearer {AUTH}"}).status_code == 200

    # load/unload are admin endpoints: no admin token configured -> 403 even with the inference token
    assert s.post("/v2/repository/models/m/unload", headers=h).status_code == 403
    assert infer_ok(s, "m", headers=h) == "1"
    assert AUTH not in s.logs()


def test_auth_and_admin_tokens_together(tmp_path, start_server):
    repo, token_file = explicit_repo(tmp_path)
    tok = tmp_path / "auth.token"
    tok.write_text(AUTH)
    s = start_server(repo, ["--model-control-mode", "explicit", "--load-model", "a",
                            "--admin-token-file", str(token_file), "--auth-token-file", str(tok)])
    # the inference token does not open model control
    r = s.post("/v2/repository/models/c/load", headers=bearer(AUTH))
    assert r.status_code == 401
    assert s.post("/v2/repository/models/c/load", headers=bearer(TOKEN)).status_code == 200
    # and the admin token does not open inference
    assert s.post("/v2/models/c/infer", json=body([1]), headers=bearer(TOKEN)).status_code == 401
    assert infer_ok(s, "c", headers=bearer(AUTH)) == "2"
    logs = s.logs()
    assert TOKEN not in logs and AUTH not in logs


# --------------------------------------------------------------------------
# warm-up


def test_warmup_delays_readiness(tmp_path, start_server):
    repo = tmp_path / "models"
    write_model(repo, "slow", identity_yaml(delay_ms=300, extra="warmup: {requests: 3}\n"))
    s = start_server(repo, wait_ready=False)
    t0 = time.monotonic()
    statuses = set()
    while time.monotonic() - t0 < 10:
        st = s.get("/v2/health/ready", timeout=5).status_code
        statuses.add(st)
        if st == 200:
            break
        time.sleep(0.02)
    elapsed = time.monotonic() - t0
    assert st == 200, statuses
    assert 503 in statuses
    # 3 warm-up requests of 300 ms each (live was seen before loading began, minus polling slop)
    assert elapsed >= 0.75, elapsed
    # the first real request succeeds
    t1 = time.monotonic()
    assert infer_ok(s, "slow", (42,)) == "1"
    assert time.monotonic() - t1 < 2.0
    assert [(e["state"], e["reason"]) for e in rows(s, "slow")] == [("READY", "")]


def test_warmup_of_batched_model_with_variable_dims_and_bytes(tmp_path, start_server):
    repo = tmp_path / "models"
    write_model(repo, "batched", """\
backend: identity
max_batch_size: 4
inputs:
  - {name: a, datatype: FP32, shape: [-1, 3]}
  - {name: s, datatype: BYTES, shape: [2]}
  - {name: f, datatype: BOOL, shape: [-1]}
outputs:
  - {name: a_out, datatype: FP32, shape: [-1, 3]}
  - {name: s_out, datatype: BYTES, shape: [2]}
  - {name: f_out, datatype: BOOL, shape: [-1]}
dynamic_batching: {max_queue_delay_us: 1000}
warmup: {requests: 2}
""")
    write_model(repo, "zero", identity_yaml(extra="warmup: {requests: 0}\n"))
    s = start_server(repo)
    assert [(e["name"], e["state"], e["reason"]) for e in index(s)] == [("batched", "READY", ""),
                                                                          ("zero", "READY", "")]
    r = s.post("/v2/models/batched/infer", json={"inputs": [
        {"name": "a", "datatype": "FP32", "shape": [1, 2, 3], "data": [1, 2, 3, 4, 5, 6]},
        {"name": "s", "datatype": "BYTES", "shape": [1, 2], "data": ["x", "yz"]},
        {"name": "f", "datatype": "BOOL", "shape": [1, 1], "data": [True]}]})
    assert r.status_code == 200, r.text
    outs = {o["name"]: o["data"] for o in r.json()["outputs"]}
    assert outs == {"a_out": [1, 2, 3, 4, 5, 6], "s_out": ["x", "yz"], "f_out": [True]}
    infer_ok(s, "zero")


def test_warmup_failure_leaves_model_unavailable(tmp_path, start_server):
    repo = tmp_path / "models"
    write_model(repo, "wfail", identity_yaml(fail=True, extra="warmup: {requests: 1}\n"), versions=(1, 2))
    write_model(repo, "warm_by_default", identity_yaml(fail=True))  # one warm-up request unless told otherwise
    write_model(repo, "nowarm", identity_yaml(fail=True, extra="warmup: {requests: 0}\n"))  # fails only when it runs
    write_model(repo, "ok", identity_yaml(extra="warmup: {requests: 2}\n"))
    s = start_server(repo)
    got = rows(s, "wfail")
    assert len(got) == 1 and got[0]["version"] == "2" and got[0]["state"] == "UNAVAILABLE", got
    assert "warm-up" in got[0]["reason"], got
    r = s.infer("wfail", body([1])["inputs"])
    assert r.status_code == 503
    assert "warm-up" in error_of(r)
    assert s.get("/v2/models/wfail/ready").status_code == 503
    assert s.get("/v2/models/wfail/versions/2/ready").status_code == 503
    assert s.get("/v2/models/wfail").status_code == 503

    default = rows(s, "warm_by_default")
    assert default and default[0]["state"] == "UNAVAILABLE" and "warm-up request 1" in default[0]["reason"], default
    assert [(e["state"], e["reason"]) for e in rows(s, "nowarm")] == [("READY", "")]
    assert s.infer("nowarm", body([1])["inputs"]).status_code == 500
    infer_ok(s, "ok")
    assert s.get("/v2/health/ready").status_code == 200
