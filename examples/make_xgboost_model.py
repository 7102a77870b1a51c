#!/usr/bin/python3
"""Writes the example XGBoost model examples/models/churn/.

Run with Debian's Python (xgboost 1.7):  /usr/bin/python3 examples/make_xgboost_model.py

A binary:logistic model on 4 features, trained on synthetic customers:
  tenure_months, monthly_charges, support_calls, contract_months
and predicting the probability that a customer leaves. Deterministic: a seeded
numpy generator, the exact tree method and one thread.
"""
import pathlib

import numpy as np
import xgboost as xgb

HERE = pathlib.Path(__file__).resolve().parent
MODEL = HERE / "models" / "churn"

CONFIG = """\
backend: xgboost
max_batch_size: 1024
inputs:
  # tenure_months, monthly_charges, support_calls, contract_months; NaN = unknown
  - name: features
    datatype: FP32
    shape: [4]
    columns: [tenure_months, monthly_charges, support_calls, contract_months]  # for `berth batch`
outputs:
  - {name: churn_probability, datatype: FP32, shape: [1]}
instances: 1
threads: 1
"""


def synthetic_customers(n, rng):
    tenure = rng.integers(0, 72, n).astype(np.float32)
    charges = rng.uniform(20, 120, n).astype(np.float32)
    calls = rng.poisson(1.5, n).astype(np.float32)
    contract = rng.choice([1, 12, 24], n).astype(np.float32)
    x = np.stack([tenure, charges, calls, contract], axis=1)
    logit = -1.0 - 0.04 * tenure + 0.02 * (charges - 70) + 0.6 * calls - 0.08 * contract
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return x, y


def main():
    rng = np.random.default_rng(0)
    x, y = synthetic_customers(2000, rng)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3,
              "tree_method": "exact", "nthread": 1, "seed": 0}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=20)
    (MODEL / "1").mkdir(parents=True, exist_ok=True)
    (MODEL / "model.yaml").write_text(CONFIG)
    booster.save_model(str(MODEL / "1" / "model.json"))
    sample = x[:2]
    print("wrote", MODEL, "; sample", sample.tolist(), "->", booster.predict(xgb.DMatrix(sample)).tolist())


if __name__ == "__main__":
    main()
