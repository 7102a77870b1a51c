#!/usr/bin/python3
"""Makes the `co2_forecast` example in examples/forecast/models from the weekly Mauna Loa CO2 series that Debian's
python3-statsmodels ships (statsmodels.datasets.co2: 2,284 weeks from 1958-03-29 to 2001-12-29, 59 of them
missing; nothing is downloaded):

  co2_features/  TorchScript: history FP32 [n] (n >= 52 weekly values, NaN = missing, carried forward) ->
                 features FP32 [n - 39, 12]: 13 rows for the forecast (origin: the last week, horizons 1..13),
                 then one row per week i >= 52 (origin i - 1, horizon 1) for the one-step expectation of week i
  co2_xgb/       XGBoost (reg:squarederror) on those lag and season features: the change from the origin's
                 value to the value h weeks later (trees cannot extrapolate a rising level; a change they can)
  co2_combine/   TorchScript: history + changes -> forecast FP32 [13] (last value + change) and anomaly BOOL [n]:
                 a week whose value is further than THRESHOLD ppm from its one-step expectation (4 standard
                 deviations of the training weeks' one-step errors); the first 52 weeks and missing ones: false
  co2_forecast/  pipeline: history [-1] -> features -> xgb -> combine -> forecast, anomaly
  co2_weekly/    the same for berth batch: history [52] (history_0 .. history_51 in a CSV), forecast only

Trained on the weeks up to 1995-12-31; MAPE on the weeks of 1996-2001 (each forecast made from the actual
values before it) is printed and written to co2_quality.json. With --weeks FILE the script writes only the CSV
of 1996-2001's weeks for berth batch (week, history_0 .. history_51: the 52 values up to that week; a missing
value is an empty field). Run with Debian's Python: /usr/bin/python3 examples/forecast/make_co2_model.py
"""
import argparse
import json
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
MODELS = HERE / "models"
WINDOW, HORIZON, LAGS, SEED = 52, 13, (1, 2, 3, 4, 8, 13, 26), 20261204
FEATURES = (["horizon"] + [f"change_{k}" for k in LAGS] +
            ["last_year_at_target", "change_51", "above_year_min", "below_year_max"])
TRAIN_END, TEST_FIRST, TEST_LAST = "1995-12-31", "1996-01-01", "2001-12-31"


def series():
    """(dates, weekly values as float32 with NaN for the missing weeks)."""
    from statsmodels.datasets import co2
    data = co2.load_pandas().data["co2"]
    return data.index, data.to_numpy(np.float32)


def carry_forward(y):
    """NaN -> the last value before it (leading NaNs -> the first value); all-NaN stays NaN."""
    y = np.asarray(y, np.float32)
    valid = ~np.isnan(y)
    idx = np.where(valid, np.arange(len(y)), 0)
    if len(y):
        idx[0] = int(np.argmax(valid))
    return y[np.maximum.accumulate(idx)]


def features(y, origins, horizons):
    """The rows the model sees, in float32 as the server computes them: one per (origin index, horizon)."""
    y = carry_forward(y)
    origins, horizons = np.asarray(origins), np.asarray(horizons)
    yt = y[origins]
    cols = [horizons.astype(np.float32)]
    cols += [yt - y[origins - k] for k in LAGS]
    cols.append(y[origins + horizons - WINDOW] - yt)
    cols.append(yt - y[origins - (WINDOW - 1)])
    windows = np.lib.stride_tricks.sliding_window_view(y, WINDOW)[origins - (WINDOW - 1)]
    cols.append(yt - windows.min(axis=1))
    cols.append(windows.max(axis=1) - yt)
    return np.stack(cols, axis=1).astype(np.float32)


def request_rows(n):
    """(origins, horizons) of the features for a history of n values, in the order co2_features writes them."""
    origins = np.concatenate([np.full(HORIZON, n - 1), np.arange(WINDOW - 1, n - 1)])
    horizons = np.concatenate([np.arange(1, HORIZON + 1), np.ones(n - WINDOW, np.int64)])
    return origins, horizons


def oracle(booster, history, threshold):
    """numpy windowing + Python xgboost: (forecast [13], anomaly [n]) for one history."""
    import xgboost as xgb
    history = np.asarray(history, np.float32)
    n = len(history)
    origins, horizons = request_rows(n)
    change = booster.predict(xgb.DMatrix(features(history, origins, horizons), missing=np.nan)).astype(np.float32)
    y = carry_forward(history)
    forecast = y[n - 1] + change[:HORIZON]
    expected = y[WINDOW - 1:n - 1] + change[HORIZON:]
    with np.errstate(invalid="ignore"):
        far = np.abs(history[WINDOW:] - expected) > np.float32(threshold)
    return forecast, np.concatenate([np.zeros(WINDOW, bool), far])


def training_rows(dates, y, last_target_date):
    """Every (origin, horizon) whose target is a week up to last_target_date with a known value."""
    rows = []
    last = int(np.searchsorted(dates, np.datetime64(last_target_date), side="right")) - 1
    for t in range(WINDOW - 1, last):
        for h in range(1, HORIZON + 1):
            if t + h <= last and not np.isnan(y[t + h]):
                rows.append((t, h))
    return np.array(rows)


def write_weeks(path, dates, y):
    first = int(np.searchsorted(dates, np.datetime64(TEST_FIRST)))
    last = int(np.searchsorted(dates, np.datetime64(TEST_LAST), side="right"))
    with open(path, "w") as f:
        f.write("week," + ",".join(f"history_{j}" for j in range(WINDOW)) + "\n")
        for t in range(first, last):
            values = ["" if np.isnan(v) else repr(float(v)) for v in y[t - WINDOW + 1:t + 1]]
            f.write(str(dates[t].date()) + "," + ",".join(values) + "\n")
    return last - first


def scripted_steps(threshold):
    import torch

    def carry(history: torch.Tensor) -> torch.Tensor:
        valid = ~torch.isnan(history)
        n = history.size(1)
        idx = torch.where(valid, torch.arange(n).unsqueeze(0).expand_as(history), torch.zeros_like(history).long())
        idx[:, 0] = valid.long().argmax(dim=1)
        return torch.gather(history, 1, torch.cummax(idx, dim=1).values)

    class Features(torch.nn.Module):
        def forward(self, history: torch.Tensor) -> torch.Tensor:
            n = history.size(1)
            if n < 52:
                raise ValueError("history has " + str(n) + " values; the forecast needs the last 52 or more weeks")
            y = carry(history)
            origins = torch.cat([torch.full([13], n - 1, dtype=torch.long), torch.arange(51, n - 1)])
            horizons = torch.cat([torch.arange(1, 14), torch.ones(n - 52, dtype=torch.long)])
            yt = y[:, origins]
            cols = [horizons.to(torch.float32).unsqueeze(0).expand_as(yt)]
            for k in [1, 2, 3, 4, 8, 13, 26]:
                cols.append(yt - y[:, origins - k])
            cols.append(y[:, origins + horizons - 52] - yt)
            cols.append(yt - y[:, origins - 51])
            windows = y.unfold(1, 52, 1)[:, origins - 51]
            cols.append(yt - windows.min(dim=2).values)
            cols.append(windows.max(dim=2).values - yt)
            return torch.stack(cols, dim=2)

    class Combine(torch.nn.Module):
        def __init__(self, threshold: float):
            super().__init__()
            self.threshold = threshold

        def forward(self, history: torch.Tensor, change: torch.Tensor):
            n = history.size(1)
            if n < 52 or change.size(1) != n - 39:
                raise ValueError("history and change do not match: " + str(n) + " values, " +
                                 str(change.size(1)) + " changes")
            y = carry(history)
            c = change[:, :, 0]
            forecast = y[:, n - 1:n] + c[:, :13]
            expected = y[:, 51:n - 1] + c[:, 13:]
            far = (history[:, 52:] - expected).abs() > self.threshold
            anomaly = torch.cat([torch.zeros(history.size(0), 52, dtype=torch.bool), far], dim=1)
            return forecast, anomaly

    return torch.jit.script(Features()), torch.jit.script(Combine(float(threshold)))


YAML = {
    "co2_features": """\
# history (weekly CO2 values, >= 52, NaN = missing) -> the XGBoost rows: 13 for the forecast, one per week >= 52
backend: torchscript
max_batch_size: 64
warmup: {requests: 0}   # a warm-up request of zeros has one value, fewer than the 52 this step needs
inputs:
  - {name: history, datatype: FP32, shape: [-1]}
outputs:
  - {name: features, datatype: FP32, shape: [-1, 12]}
""",
    "co2_xgb": """\
# lag and season features -> the change from the origin week's value to the value `horizon` weeks later
backend: xgboost
max_batch_size: 64
inputs:
  - {name: features, datatype: FP32, shape: [-1, 12]}
outputs:
  - {name: change, datatype: FP32, shape: [-1, 1]}
""",
    "co2_combine": """\
# history + changes -> the next 13 weeks, and which weeks are far from their one-step expectation
backend: torchscript
max_batch_size: 64
warmup: {requests: 0}
inputs:
  - {name: history, datatype: FP32, shape: [-1]}
  - {name: change, datatype: FP32, shape: [-1, 1]}
outputs:
  - {name: forecast, datatype: FP32, shape: [13]}
  - {name: anomaly, datatype: BOOL, shape: [-1]}
""",
    "co2_forecast": """\
# The last >= 52 weekly CO2 values (ppm) in; the next 13 weeks and an anomaly flag per value out.
kind: pipeline
max_batch_size: 16
warmup: {requests: 0}   # (co2_weekly warms the same steps up with 52 zeros)
inputs:
  - {name: history, datatype: FP32, shape: [-1]}
outputs:
  - {name: forecast, from: combine.forecast}
  - {name: anomaly, from: combine.anomaly}
steps:
  - {name: features, model: co2_features, inputs: {history: $in.history}}
  - {name: model, model: co2_xgb, inputs: {features: features.features}}
  - {name: combine, model: co2_combine, inputs: {history: $in.history, change: model.change}}
""",
    "co2_weekly": """\
# co2_forecast for berth batch: one week per row, its last 52 values in history_0 .. history_51.
kind: pipeline
max_batch_size: 64
inputs:
  - {name: history, datatype: FP32, shape: [52]}
outputs:
  - {name: forecast, from: combine.forecast}
steps:
  - {name: features, model: co2_features, inputs: {history: $in.history}}
  - {name: model, model: co2_xgb, inputs: {features: features.features}}
  - {name: combine, model: co2_combine, inputs: {history: $in.history, change: model.change}}
""",
}


def mape(pred, actual):
    return float(np.mean(np.abs(pred - actual) / actual) * 100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", help="write only the CSV of 1996-2001's weeks for berth batch to this file")
    args = parser.parse_args()
    dates, y = series()
    if args.weeks:
        print(f"{write_weeks(args.weeks, dates, y)} weeks -> {args.weeks}")
        return

    import xgboost as xgb
    train = training_rows(dates, y, TRAIN_END)
    x = features(y, train[:, 0], train[:, 1])
    target = y[train[:, 0] + train[:, 1]] - carry_forward(y)[train[:, 0]]
    params = {"objective": "reg:squarederror", "max_depth": 4, "eta": 0.08, "subsample": 0.8,
              "colsample_bytree": 0.9, "seed": SEED, "nthread": 2}
    booster = xgb.train(params, xgb.DMatrix(x, target, missing=np.nan), 250)
    one_step = train[:, 1] == 1
    residual = booster.predict(xgb.DMatrix(x[one_step], missing=np.nan)) - target[one_step]
    threshold = float(np.float32(4 * residual.std()))

    # 1996-2001: every (origin, horizon) whose target is a known week of those years, from the actual history.
    first = int(np.searchsorted(dates, np.datetime64(TEST_FIRST)))
    test = np.array([r for r in training_rows(dates, y, TEST_LAST) if r[0] + r[1] >= first])
    xt = features(y, test[:, 0], test[:, 1])
    pred = carry_forward(y)[test[:, 0]] + booster.predict(xgb.DMatrix(xt, missing=np.nan))
    actual = y[test[:, 0] + test[:, 1]]
    filled = carry_forward(y)
    naive = filled[test[:, 0]]
    seasonal = filled[test[:, 0] + test[:, 1] - WINDOW] + (filled[test[:, 0]] - filled[test[:, 0] - WINDOW])
    quality = {
        "train": f"weeks up to {TRAIN_END}: {len(train)} (origin, horizon) rows",
        "test": f"weeks {TEST_FIRST} .. {TEST_LAST}: {len(test)} (origin, horizon) rows",
        "mape_percent": {"all_horizons": mape(pred, actual),
                         "horizon_1": mape(pred[test[:, 1] == 1], actual[test[:, 1] == 1]),
                         "horizon_13": mape(pred[test[:, 1] == 13], actual[test[:, 1] == 13])},
        "baselines_mape_percent": {"last_value": mape(naive, actual),
                                   "last_year_plus_annual_change": mape(seasonal, actual)},
        "anomaly_threshold_ppm": threshold,
    }
    flags = oracle(booster, y[first - WINDOW:], threshold)[1][WINDOW:]
    quality["anomaly_weeks_1996_2001"] = int(flags.sum())
    print(json.dumps(quality, indent=2))

    for name, text in YAML.items():
        (MODELS / name / "1").mkdir(parents=True, exist_ok=True)
        (MODELS / name / "model.yaml").write_text(text)
        if "kind: pipeline" in text:
            (MODELS / name / "1" / ".gitkeep").touch()  # a pipeline's version directory holds no file
    booster.save_model(str(MODELS / "co2_xgb" / "1" / "model.ubj"))
    features_module, combine_module = scripted_steps(threshold)
    features_module.save(str(MODELS / "co2_features" / "1" / "model.pt"))
    combine_module.save(str(MODELS / "co2_combine" / "1" / "model.pt"))
    (HERE / "co2_quality.json").write_text(json.dumps(quality, indent=2) + "\n")


if __name__ == "__main__":
    main()
