"""The web UI (GET /, /ui/...) in a real browser (Debian's chromium through chromedriver and selenium), and
GET /v2/openapi.json checked by the official OpenAPI 3.1 schema (npm @seriousme/openapi-schema-validator)
and, per model, by a JSON Schema 2020-12 validator against the README's own requests.

BERTH_UI_SCREENSHOTS=DIR saves the screenshots the README shows (scripts/ui-screenshots.sh)."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import time

import jsonschema
import pytest
import requests

from conftest import EXAMPLES, ROOT, Server, identity_config, write_model

VISION = EXAMPLES.parent / "vision"
UI_NODE = ROOT / "tests" / "ui"
TOKEN = "s3cret-ui-token"

webdriver = pytest.importorskip("selenium.webdriver", reason="python3-selenium (scripts/install-deps.sh)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def browser(width=1280, height=900):
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.fail("chromium and chromium-driver are not installed (scripts/install-deps.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        options.add_argument(a)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def console_errors(driver, allow=()):
    """The page's console errors (network failures and CSP violations appear here too), less `allow` patterns."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(re.search(a, e["message"]) for a in allow)]


def wait_for(driver, css, timeout=20, text=None):
    w = WebDriverWait(driver, timeout)
    if text is not None:
        w.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    return w.until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def wait_until(check, timeout=60):
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def screenshot(driver, name):
    out = os.environ.get("BERTH_UI_SCREENSHOTS")
    if out:
        pathlib.Path(out).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(pathlib.Path(out) / name))


def text_repo(repo):
    """Identity models (the sanitizer build's one backend): a text model, a tensor model, a broken one."""
    write_model(repo, "echo_text", identity_config([("text", "BYTES", [1])], mbs=8))
    write_model(repo, "identity", identity_config([("INPUT0", "FP32", [4])], mbs=8))
    write_model(repo, "vector", identity_config([("v", "INT64", [-1])], mbs=0))  # any length: JSON in the form
    write_model(repo, "scalar", identity_config([("s", "FP32", [])], mbs=0))
    write_model(repo, "broken", "backend: identity\nmax_batch_size: 2\ninputs: []\noutputs: []\nnot_a_key: 1\n")
    return repo


@pytest.fixture(scope="module")
def driver():
    d = browser()
    yield d
    d.quit()


@pytest.fixture(scope="module")
def text_server(tmp_path_factory):
    repo = text_repo(tmp_path_factory.mktemp("ui") / "models")
    s = Server(repo, wait_ready=False)  # never ready: "broken" does not load
    s.repo_path = repo
    loaded = {"echo_text", "identity", "vector", "scalar"}
    wait_until(lambda: loaded <= {m["name"] for m in s.post("/v2/repository/index").json() if m.get("state") == "READY"})
    yield s
    s.stop()


def test_the_page_and_its_files_carry_a_strict_policy_and_need_no_token(tmp_path):
    (tmp_path / "token").write_text(TOKEN)
    s = Server(text_repo(tmp_path / "models"), ["--auth-token-file", str(tmp_path / "token")], wait_ready=False)
    try:
        for path, kind in [("/", "text/html"), ("/ui/", "text/html"), ("/ui/app.js", "text/javascript"),
                           ("/ui/style.css", "text/css"), ("/ui/icon.svg", "image/svg+xml")]:
            r = requests.get(s.url + path, timeout=5)
            assert r.status_code == 200, path
            assert r.headers["Content-Type"].startswith(kind), path
            csp = r.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert r.headers["X-Frame-Options"] == "DENY"
            again = requests.get(s.url + path, headers={"If-None-Match": r.headers["ETag"]}, timeout=5)
            assert again.status_code == 304 and again.content == b""
        page = requests.get(s.url + "/", timeout=5).text
        assert "<script>" not in page and " style=" not in page and "http" not in page.split("<body>")[1].split("</body>")[0]
        # The API behind it still needs the token; the page's files carry no model or server data.
        assert requests.get(s.url + "/v2/openapi.json", timeout=5).status_code == 401
        assert requests.get(s.url + "/metrics", timeout=5).status_code == 401  # the page's percentiles
        metrics = requests.get(s.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert metrics.status_code == 200 and "berth_request_duration_seconds" in metrics.text
        assert requests.get(s.metrics_url, timeout=5).text.count("\n") > 10  # the metrics port is unchanged
        assert requests.post(s.url + "/v2/repository/index", timeout=5).status_code == 401
        assert "echo_text" not in requests.get(s.url + "/ui/app.js", timeout=5).text
        missing = requests.get(s.url + "/ui/..%2F..%2Fetc%2Fpasswd", timeout=5)
        assert missing.status_code == 404 and "passwd" not in missing.text
        assert requests.get(s.url + "/ui/a/b", timeout=5).status_code == 404
        assert requests.post(s.url + "/", timeout=5).status_code == 405
    finally:
        s.stop()


def test_the_script_parses():
    app = ROOT / "src" / "protocol" / "http" / "ui" / "app.js"
    check = subprocess.run(["node", "--check", str(app)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    code = app.read_text()
    assert not re.search(r"\.(inner|outer)HTML|insertAdjacentHTML|document\.write|\beval\(|new Function", code)


def test_a_body_sent_to_the_page_is_never_read(tmp_path):
    """The page needs no token, so a body sent there must not take the body budget inference shares."""
    import socket
    (tmp_path / "token").write_text(TOKEN)
    s = Server(text_repo(tmp_path / "models"), ["--auth-token-file", str(tmp_path / "token")], wait_ready=False)
    try:
        for head in (b"POST / HTTP/1.1", b"PUT /ui/app.js HTTP/1.1", b"GET / HTTP/1.1", b"POST /metrics HTTP/1.1"):
            with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
                c.sendall(head + b"\r\nHost: x\r\nContent-Length: 60000000\r\n\r\n")  # and no body
                answer = c.recv(4096).split(b"\r\n")[0]
            want = b"400" if head.startswith(b"GET") else b"405"
            assert want in answer, (head, answer)
        assert requests.get(s.url + "/", timeout=5).status_code == 200
    finally:
        s.stop()


def test_the_openapi_document_of_identity_models_is_valid(tmp_path, text_server):
    doc = text_server.get("/v2/openapi.json").json()
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(doc))
    check = subprocess.run(["node", str(UI_NODE / "validate_openapi.mjs"), str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    scalar = jsonschema.Draft202012Validator(dict(doc, **{"$ref": "#/components/schemas/scalar.request"}))
    assert scalar.is_valid({"inputs": [{"name": "s", "datatype": "FP32", "shape": [], "data": [2.5]}]})
    assert not scalar.is_valid({"inputs": [{"name": "s", "datatype": "FP32", "shape": [1], "data": [2.5]}]})
    assert "/v2/models/broken/infer" not in doc["paths"]  # not ready: its metadata is not known


def test_ui_off_leaves_only_the_api(tmp_path):
    s = Server(text_repo(tmp_path / "models"), ["--ui", "off"], wait_ready=False)
    try:
        assert requests.get(s.url + "/", timeout=5).status_code == 404
        assert requests.get(s.url + "/ui/app.js", timeout=5).status_code == 404
        assert requests.get(s.url + "/metrics", timeout=5).status_code == 404
        assert requests.get(s.url + "/v2/health/live", timeout=5).status_code == 200
    finally:
        s.stop()


def test_the_repository_page_lists_every_model_with_its_state_and_reason(driver, text_server):
    driver.get(text_server.url + "/")
    wait_for(driver, "#models tbody tr[data-model='echo_text']")
    index = {m["name"]: m for m in text_server.post("/v2/repository/index").json()}
    rows = {r.get_attribute("data-model"): r for r in driver.find_elements(By.CSS_SELECTOR, "#models tbody tr")}
    assert set(rows) == set(index)
    for name, m in index.items():
        assert rows[name].get_attribute("data-state") == m["state"]
        assert rows[name].find_element(By.CSS_SELECTOR, ".state").text == m["state"]
    assert index["broken"]["state"] == "UNAVAILABLE"
    reason = rows["broken"].find_element(By.CSS_SELECTOR, ".reason").text
    assert "not_a_key" in reason and reason == index["broken"]["reason"]
    assert str(text_server.repo_path) not in driver.page_source  # no server path on the page
    assert console_errors(driver) == []
    assert driver.execute_script("return window.berthCspViolations") == []


def test_a_text_model_answers_what_was_typed(driver, text_server):
    driver.get(text_server.url + "/#/models/echo_text")
    area = wait_for(driver, "#in-text")
    area.send_keys("free money, click now")
    driver.find_element(By.CSS_SELECTOR, "#try-form button[type=submit]").click()
    cell = wait_for(driver, "#answer table[data-output='out_text'] td.value")
    assert cell.text == "free money, click now"
    snippets = driver.find_element(By.ID, "snippets").get_attribute("textContent")
    assert "tritonclient.http" in snippets and "tritonclient.grpc" in snippets and "curl -s" in snippets
    assert console_errors(driver) == []


def test_a_tensor_of_any_length_is_entered_as_json(driver, text_server):
    driver.get(text_server.url + "/#/models/vector")
    shape = wait_for(driver, "#in-v-shape")
    shape.clear()
    shape.send_keys("[5]")
    driver.find_element(By.ID, "in-v").send_keys("[1, 2, 3, 4, 5]")
    driver.find_element(By.CSS_SELECTOR, "#try-form button[type=submit]").click()
    wait_for(driver, "#answer table[data-output='out_v'] td.value")
    cells = driver.find_elements(By.CSS_SELECTOR, "#answer table[data-output='out_v'] td.value")
    assert [c.text for c in cells] == ["1", "2", "3", "4", "5"]
    # A wrong shape: the server's 400, shown as it gives it.
    shape.clear()
    shape.send_keys("[4]")
    driver.find_element(By.CSS_SELECTOR, "#try-form button[type=submit]").click()
    error = wait_for(driver, "#answer .error")
    want = text_server.post("/v2/models/vector/infer", json={"inputs": [
        {"name": "v", "datatype": "INT64", "shape": [4], "data": [1, 2, 3, 4, 5]}]}).json()["error"]
    assert error.text == want
    assert [m for m in console_errors(driver) if "400" not in m] == []


def test_the_page_asks_for_the_token_and_works_with_it(tmp_path):
    (tmp_path / "token").write_text(TOKEN)
    s = Server(text_repo(tmp_path / "models"), ["--auth-token-file", str(tmp_path / "token")], wait_ready=False)
    d = browser()
    try:
        d.get(s.url + "/")
        why = wait_for(d, "#token-why", text="token")
        assert "token" in why.text.lower()
        field = d.find_element(By.ID, "token-input")
        assert field.get_attribute("type") == "password"
        field.send_keys(TOKEN + Keys.ENTER)  # keyboard only
        wait_for(d, "#models tbody tr[data-model='identity']")
        assert d.find_element(By.ID, "token-panel").is_displayed() is False
        assert d.execute_script("return sessionStorage.getItem('berth.token')") == TOKEN
        # A model page with the token: its form works.
        d.get(s.url + "/#/models/identity")
        for i, v in enumerate(["1.5", "-2", "3.25", "0"]):
            wait_for(d, f"#in-INPUT0-{i}").send_keys(v)
        d.find_element(By.CSS_SELECTOR, "#in-INPUT0-3").send_keys(Keys.ENTER)
        wait_for(d, "#answer table[data-output='out_INPUT0'] td.value")
        got = [float(c.text) for c in d.find_elements(By.CSS_SELECTOR, "#answer table[data-output='out_INPUT0'] td.value")]
        assert got == [1.5, -2.0, 3.25, 0.0]
        # The 401 before the token was given is the only console error.
        assert [m for m in console_errors(d) if "401" not in m] == []
        assert d.execute_script("return window.berthCspViolations") == []
    finally:
        d.quit()
        s.stop()


def test_load_and_unload_buttons_come_with_the_model_control_token(tmp_path):
    (tmp_path / "admin").write_text("admin-" + TOKEN)
    s = Server(text_repo(tmp_path / "models"), ["--model-control-mode", "explicit", "--load-model", "identity",
                                                "--admin-token-file", str(tmp_path / "admin")])
    d = browser()
    try:
        d.get(s.url + "/")
        wait_for(d, "#models tbody tr[data-model='identity'][data-state='READY']")
        assert d.find_elements(By.CSS_SELECTOR, "td.actions button") == []  # no buttons without the token
        d.find_element(By.ID, "token-button").click()
        d.find_element(By.ID, "admin-input").send_keys("admin-" + TOKEN + Keys.ENTER)
        wait_for(d, "button[aria-label='Unload identity']").click()
        wait_for(d, "#models tbody tr[data-model='identity'][data-state='UNAVAILABLE']")
        assert s.get("/v2/models/identity/ready").status_code != 200
        wait_for(d, "button[aria-label='Load identity']").click()
        wait_for(d, "#models tbody tr[data-model='identity'][data-state='READY']")
        # Explicit mode lists the models loaded so far: another one is loaded by name.
        assert d.find_elements(By.CSS_SELECTOR, "#models tbody tr[data-model='echo_text']") == []
        d.find_element(By.ID, "load-name").send_keys("echo_text" + Keys.ENTER)
        wait_for(d, "#models tbody tr[data-model='echo_text'][data-state='READY']")
        assert s.get("/v2/models/echo_text/ready").status_code == 200
        # A wrong model-control token: the answer says so, and nothing changes.
        d.find_element(By.ID, "token-button").click()
        field = d.find_element(By.ID, "admin-input")
        field.clear()
        field.send_keys("wrong" + Keys.ENTER)
        wait_for(d, "button[aria-label='Unload echo_text']").click()
        wait_for(d, "#token-why", text="model-control token")
        assert s.get("/v2/models/echo_text/ready").status_code == 200
        assert [m for m in console_errors(d) if "401" not in m] == []
    finally:
        d.quit()
        s.stop()


def test_every_input_has_a_label_and_a_phone_width_screen_needs_no_sideways_scroll(text_server):
    d = browser(390, 844)
    try:
        for page, ready in [("/", "#models tbody tr"), ("/#/models/identity", "#in-INPUT0-0"),
                            ("/#/models/echo_text", "#in-text"), ("/#/metrics", "#metrics")]:
            d.get(text_server.url + page)
            wait_for(d, ready)
            unlabelled = d.execute_script("""
                return [...document.querySelectorAll('input, textarea, select')].filter((e) =>
                    !e.labels.length && !e.getAttribute('aria-label') && e.offsetParent !== null).map((e) => e.id);""")
            assert unlabelled == [], page
            assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), page
        assert console_errors(d) == []
    finally:
        d.quit()


@pytest.mark.torch
@pytest.mark.image_backend
def test_mlp_and_fashion_answers_equal_the_api(tmp_path):
    repo = tmp_path / "models"  # copies: a model that resolves outside its repository is refused
    shutil.copytree(EXAMPLES / "mlp", repo / "mlp")
    for m in ("fashion", "fashion_cnn", "decode28", "fashion_label"):
        shutil.copytree(VISION / "models" / m, repo / m)
    text_repo(repo)  # and a broken model, whose reason the page shows
    s = Server(repo, wait_ready=False)
    d = browser()
    try:
        for m in ("mlp", "fashion"):
            wait_until(lambda: s.get(f"/v2/models/{m}/ready").status_code == 200)
        d.get(s.url + "/")
        wait_for(d, "#models tbody tr[data-model='fashion'][data-state='READY']")
        screenshot(d, "ui-repository.png")

        # mlp: 16 numbers in, the 4 probabilities equal to the API's answer.
        values = [0.5 * i - 3 for i in range(16)]
        d.get(s.url + "/#/models/mlp")
        paste = wait_for(d, "#in-x-paste")
        paste.send_keys(", ".join(str(v) for v in values) + Keys.TAB)
        d.find_element(By.CSS_SELECTOR, "#try-form button[type=submit]").click()
        wait_for(d, "#answer table[data-output='probs'] td.value")
        got = [float(c.text) for c in d.find_elements(By.CSS_SELECTOR, "#answer table[data-output='probs'] td.value")]
        want = s.infer("mlp", [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": values}]).json()
        assert got == want["outputs"][0]["data"] and len(got) == 4
        assert len(d.find_elements(By.CSS_SELECTOR, "#answer ol.bars li")) == 4  # probabilities: shown as bars too

        # fashion: a PNG picked from disk; the label and score the API gives for the same file.
        d.get(s.url + "/#/models/fashion")
        wait_for(d, "#in-image-file").send_keys(str(VISION / "shirt.png"))
        d.find_element(By.CSS_SELECTOR, "#try-form button[type=submit]").click()
        top = wait_for(d, "#answer ol.bars[data-output='probs'] li")
        body = (VISION / "shirt.png").read_bytes()
        api = s.post("/v2/models/fashion/infer", data=body, headers={"Content-Type": "image/png"}).json()
        probs = next(o for o in api["outputs"] if o["name"] == "probs")["data"]
        labels = (VISION / "models" / "fashion" / "labels.txt").read_text().splitlines()
        best = max(range(len(probs)), key=lambda i: probs[i])
        assert top.get_attribute("data-label") == labels[best]
        assert abs(float(top.get_attribute("data-score")) - probs[best]) < 1e-5
        assert len(d.find_elements(By.CSS_SELECTOR, "#answer ol.bars li")) == 5
        # The label step's outputs are asked for with the classified one: the class name as the API gives it.
        shown = d.find_element(By.CSS_SELECTOR, "#answer table[data-output='label'] td.value").text
        assert shown == next(o for o in api["outputs"] if o["name"] == "label")["data"][0] == labels[best]
        d.set_window_size(1280, 1000)
        screenshot(d, "ui-model.png")
        assert console_errors(d) == []
        assert d.execute_script("return window.berthCspViolations") == []
    finally:
        d.quit()
        s.stop()


def test_the_metrics_page_shows_the_request_rate(driver, text_server):
    driver.get(text_server.url + "/#/metrics")
    wait_for(driver, "#metrics tbody tr[data-model='identity']")
    for _ in range(30):
        text_server.infer("identity", [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}])
    # The table is rebuilt every 2 s: its cells are read in one script, never through stale elements.
    read = """const row = document.querySelector("#metrics tr[data-model='identity']");
              return row && ['rate', 'p50', 'p99', 'queue'].map((c) => row.querySelector('td.' + c).textContent);"""

    def number(text):
        try:
            return float(text)
        except ValueError:  # "—": no data yet
            return 0.0

    def with_requests(d):  # requests keep coming until a poll has seen them in both sources
        for _ in range(5):
            text_server.infer("identity", [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}])
        cells = d.execute_script(read)
        return cells if cells and number(cells[0]) > 0 and number(cells[1]) > 0 else False

    rate, p50, p99, queue = WebDriverWait(driver, 15).until(with_requests)
    assert number(rate) > 0
    assert 0 < number(p50) <= number(p99) < 1000  # ms, from the histogram of /metrics
    assert queue == "0"
    assert console_errors(driver) == []


# ---- GET /v2/openapi.json --------------------------------------------------------------------------------


def readme_requests():
    """(model, body) for each `curl .../v2/models/M/infer -d '...'` of the README's first example block."""
    text = (ROOT / "README.md").read_text()
    text = text[text.index("## Quick start"):text.index("## Layout")]
    found = re.findall(r"localhost:8000/v2/models/(\w+)/infer\s*\\?\s*-d '([^']*)'", text)
    return [(m, json.loads(b)) for m, b in found]


@pytest.mark.torch
@pytest.mark.xgboost
@pytest.mark.onnx
def test_the_openapi_document_is_valid_and_its_model_schemas_check_requests(tmp_path, examples_server):
    doc = examples_server.get("/v2/openapi.json").json()
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(doc))
    if not (UI_NODE / "node_modules" / "@seriousme").exists():
        pytest.fail("tests/ui/node_modules is missing (scripts/install-deps.sh runs npm ci there)")
    check = subprocess.run(["node", str(UI_NODE / "validate_openapi.mjs"), str(path)], capture_output=True, text=True)
    result = json.loads(check.stdout)
    assert check.returncode == 0 and result["valid"] and result["refs"], result
    assert result["version"] == "3.1"

    def validator(model):
        schema = dict(doc, **{"$ref": f"#/components/schemas/{model}.request"})
        return jsonschema.Draft202012Validator(schema)

    examples = readme_requests()
    assert {m for m, _ in examples} >= {"multiply", "mlp", "random_matrix", "churn"}
    for model, body in examples:
        validator(model).validate(body)  # the README's requests are valid...
        assert examples_server.post(f"/v2/models/{model}/infer", json=body).status_code == 200
    mlp = dict(examples[[m for m, _ in examples].index("mlp")][1])
    wrong = json.loads(json.dumps(mlp))
    wrong["inputs"][0]["shape"] = [1, 15]  # ...a wrong shape, datatype, name or a missing input is not
    assert not validator("mlp").is_valid(wrong)
    assert examples_server.post("/v2/models/mlp/infer", json=wrong).status_code == 400
    for change in ({"datatype": "INT64"}, {"name": "y"}):
        w = json.loads(json.dumps(mlp))
        w["inputs"][0].update(change)
        assert not validator("mlp").is_valid(w), change
    assert not validator("multiply").is_valid({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [3]}]})
    assert not validator("multiply").is_valid({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [3]}] * 2})
    # Each model's response schema accepts what the model answers.
    for model, body in examples:
        answer = examples_server.post(f"/v2/models/{model}/infer", json=body).json()
        jsonschema.Draft202012Validator(dict(doc, **{"$ref": f"#/components/schemas/{model}.response"})).validate(answer)
    assert set(doc["paths"]) >= {f"/v2/models/{m}/infer" for m, _ in examples}


@pytest.mark.torch
@pytest.mark.sentencepiece
def test_spam_typed_in_the_page_gets_the_apis_label(tmp_path, driver):
    link = tmp_path / "models"
    link.symlink_to(EXAMPLES.parent / "text" / "models")
    s = Server(link)
    try:
        message = "Subject: You WON $1,000,000!!!\n\nClick here now to claim your FREE prize, limited offer."
        driver.get(s.url + "/#/models/spam")
        wait_for(driver, "#in-text").send_keys(message)
        driver.find_element(By.CSS_SELECTOR, "#try-form button[type=submit]").click()
        label = wait_for(driver, "#answer table[data-output='label'] td.value")
        api = s.post("/v2/models/spam/infer", data=message.encode(), headers={"Content-Type": "text/plain"}).json()
        out = {o["name"]: o["data"] for o in api["outputs"]}
        assert label.text == out["label"][0] and label.text in ("spam", "ham")
        score = driver.find_element(By.CSS_SELECTOR, "#answer table[data-output='score'] td.value").text
        assert float(score) == out["score"][0]
        assert console_errors(driver) == []
    finally:
        s.stop()
