"""The predictive-analytics use case, examples/forecast/models: the last >= 52 weekly CO2 values in, the next
13 weeks and an anomaly flag per value out (co2_forecast), and the same model over a CSV of weeks in
`berth batch` (co2_weekly). The oracle: numpy windowing and Python xgboost over the committed model file
(examples/forecast/make_co2_model.py's `oracle`), on the held-out weeks of 1996-2001 of statsmodels' series."""
import importlib.util
import json
import subprocess

import numpy as np
import pytest

from conftest import BERTH_BIN, EXAMPLES, Server, error_of

FORECAST = EXAMPLES.parent / "forecast"
MODELS = FORECAST / "models"
QUALITY = json.loads((FORECAST / "co2_quality.json").read_text())

pytestmark = [pytest.mark.torch, pytest.mark.xgboost]


@pytest.fixture(scope="module")
def make():
    spec = importlib.util.spec_from_file_location("make_co2_model", FORECAST / "make_co2_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def booster():
    import xgboost as xgb
    return xgb.Booster(model_file=str(MODELS / "co2_xgb" / "1" / "model.ubj"))


@pytest.fixture(scope="module")
def weekly(make):
    """(dates, values) of the whole series, NaN where a week is missing."""
    return make.series()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    link = tmp_path_factory.mktemp("forecast") / "models"
    link.symlink_to(MODELS)
    s = Server(link)
    yield s
    s.stop()


def forecast(server, histories):
    data = [None if np.isnan(v) else float(v) for h in histories for v in h]
    r = server.infer("co2_forecast", [{"name": "history", "datatype": "FP32",
                                       "shape": [len(histories), len(histories[0])], "data": data}])
    assert r.status_code == 200, r.text[:300]
    out = {o["name"]: o for o in r.json()["outputs"]}
    n = len(histories[0])
    assert out["forecast"]["datatype"] == "FP32" and out["forecast"]["shape"] == [len(histories), 13]
    assert out["anomaly"]["datatype"] == "BOOL" and out["anomaly"]["shape"] == [len(histories), n]
    return (np.asarray(out["forecast"]["data"], np.float64).reshape(-1, 13),
            np.asarray(out["anomaly"]["data"], bool).reshape(-1, n))


def test_forecast_and_anomalies_equal_numpy_and_xgboost_on_held_out_weeks(server, make, booster, weekly):
    dates, y = weekly
    first = int(np.searchsorted(dates, np.datetime64("1996-01-01")))
    threshold = QUALITY["anomaly_threshold_ppm"]
    cases = [y[first - 52:first], y[first - 53:first], y[first - 100:first + 80], y[first - 52:],
             y[first + 100:first + 152]]
    spiked = y[first - 60:first + 60].copy()
    spiked[90] += 6.0  # a week 6 ppm off is far from any expectation
    cases.append(spiked)
    gaps = y[first - 80:first + 40].copy()
    gaps[[0, 1, 30, 31, 32, 119]] = np.nan  # missing weeks, at the start and at the end too
    cases.append(gaps)
    y1984 = int(np.searchsorted(dates, np.datetime64("1984-01-01")))
    cases.append(y[y1984 - 20:y1984 + 100])  # the series' own missing weeks (1984-85; none after)
    assert np.isnan(cases[-1]).any()
    for history in cases:
        got_forecast, got_anomaly = forecast(server, [history])
        want_forecast, want_anomaly = make.oracle(booster, history, threshold)
        np.testing.assert_allclose(got_forecast[0], want_forecast, rtol=0, atol=1e-4)
        assert (got_anomaly[0] == want_anomaly).all(), np.flatnonzero(got_anomaly[0] != want_anomaly)
        assert not got_anomaly[0][:52].any()
    assert forecast(server, [spiked])[1][0][90]
    assert not forecast(server, [y[first + 100:first + 152]])[1].any()
    # A forecast is where the next weeks' values are: within 1.5 ppm of them, 13 weeks ahead.
    got, _ = forecast(server, [y[first - 52:first]])
    assert np.nanmax(np.abs(got[0] - y[first:first + 13])) < 1.5


def test_a_batch_of_histories_equals_each_alone(server, weekly):
    _, y = weekly
    histories = [y[i:i + 70] for i in range(1500, 1900, 50)]
    batch_forecast, batch_anomaly = forecast(server, histories)
    for row, history in enumerate(histories):
        alone_forecast, alone_anomaly = forecast(server, [history])
        np.testing.assert_array_equal(batch_forecast[row], alone_forecast[0])
        np.testing.assert_array_equal(batch_anomaly[row], alone_anomaly[0])


def test_short_histories_and_wrong_types_are_400s(server, weekly):
    _, y = weekly
    for n in (0, 1, 51):
        r = server.infer("co2_forecast", [{"name": "history", "datatype": "FP32", "shape": [1, n],
                                           "data": [float(v) for v in y[len(y) - n:]]}])
        assert r.status_code == 400, r.text[:300]
        assert f"history has {n} values; the forecast needs the last 52 or more weeks" in error_of(r)
        assert "step 'features'" in error_of(r)
    r = server.infer("co2_forecast", [{"name": "history", "datatype": "INT64", "shape": [1, 52], "data": [1] * 52}])
    assert r.status_code == 400 and "FP32" in error_of(r)
    assert server.get("/v2/health/ready").status_code == 200


def test_berth_batch_over_a_csv_of_weeks_equals_the_oracle_and_its_mape_is_the_readmes(tmp_path, make, booster,
                                                                                      weekly):
    import pandas as pd
    weeks = tmp_path / "co2_weeks.csv"
    subprocess.run(["/usr/bin/python3", str(FORECAST / "make_co2_model.py"), "--weeks", str(weeks)], check=True,
                   capture_output=True, timeout=120)
    # Weeks of 1984-85, where the series has gaps (empty fields: missing values), after those of 1996-2001.
    dates, y = weekly
    with open(weeks, "a") as f:
        for t in range(int(np.searchsorted(dates, np.datetime64("1984-01-01"))),
                       int(np.searchsorted(dates, np.datetime64("1985-12-31")))):
            values = ["" if np.isnan(v) else repr(float(v)) for v in y[t - 51:t + 1]]
            f.write(f"{dates[t].date()}," + ",".join(values) + "\n")
    out = tmp_path / "forecasts.csv"
    p = subprocess.run([str(BERTH_BIN), "batch", str(MODELS / "co2_weekly"), "--in", str(weeks), "--out", str(out),
                        "--keep", "week", "--progress", "none"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    table = pd.read_csv(weeks)
    result = pd.read_csv(out)
    assert len(table) == len(result) == 313 + 104 and (result["week"] == table["week"]).all()
    assert (tmp_path / "forecasts.csv.rejects.csv").read_text().strip() == "line,reason,record"
    history = table[[f"history_{j}" for j in range(52)]].to_numpy(np.float32)
    assert np.isnan(history[313:]).any() and not np.isnan(history[:313]).any()
    got = result[[f"forecast_{j}" for j in range(13)]].to_numpy(np.float64)
    for row in range(len(table)):
        want, _ = make.oracle(booster, history[row], QUALITY["anomaly_threshold_ppm"])
        np.testing.assert_allclose(got[row], want, rtol=0, atol=1e-4)

    # Each week's 13 forecasts against the weeks that followed, up to 2001-12-29: the script's MAPE, within
    # what the origins before 1996 (the script counts them, the CSV starts in 1996) change.
    first = int(np.searchsorted(dates, np.datetime64("1996-01-01")))
    errors = []
    for row in range(313):
        for h in range(1, 14):
            t = first + row + h
            if t < len(y) and not np.isnan(y[t]):
                errors.append(abs(got[row, h - 1] - y[t]) / y[t])
    mape = 100 * float(np.mean(errors))
    assert abs(mape - QUALITY["mape_percent"]["all_horizons"]) < 0.02, mape
    assert mape < QUALITY["baselines_mape_percent"]["last_year_plus_annual_change"]
