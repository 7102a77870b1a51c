"""Writes the small XGBoost 1.7 models model_file_check_test.cc checks (run with /usr/bin/python3)."""
import pathlib

import numpy as np
import pandas as pd
import xgboost as xgb

out = pathlib.Path(__file__).resolve().parent
rng = np.random.default_rng(0)
X = rng.normal(size=(200, 4))
y = X[:, 0] + (X[:, 1] > 0)
d = xgb.DMatrix(X, y)


def save(booster, name):
    booster.save_model(str(out / f"{name}.json"))
    booster.save_model(str(out / f"{name}.ubj"))


save(xgb.train({"max_depth": 2, "tree_method": "hist", "seed": 0}, d, 2), "reg")
yc = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
save(xgb.train({"max_depth": 2, "objective": "multi:softprob", "num_class": 3, "seed": 0}, xgb.DMatrix(X, yc), 2),
     "multi")
save(xgb.train({"max_depth": 2, "booster": "dart", "rate_drop": 0.1, "seed": 0}, d, 2), "dart")
save(xgb.train({"booster": "gblinear", "seed": 0}, d, 2), "lin")
df = pd.DataFrame({"a": pd.Categorical(rng.integers(0, 40, 200)), "b": X[:, 1]})
yy = (df["a"].cat.codes % 3 == 0).astype(float) + X[:, 1]
save(xgb.train({"max_depth": 2, "tree_method": "hist", "max_cat_to_onehot": 1, "seed": 0},
               xgb.DMatrix(df, yy, enable_categorical=True), 2), "cat")
