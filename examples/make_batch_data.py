#!/usr/bin/python3
"""Writes examples/data/customers.csv: 1,000 synthetic customers for the churn
model (`berth batch examples/models/churn --in examples/data/customers.csv ...`).

Deterministic (seeded). Names are quoted where they hold a comma; about one
customer in 25 has no support_calls value (an empty field = missing = NaN).
"""
import csv
import pathlib

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent / "data" / "customers.csv"


def main():
    rng = np.random.default_rng(7)
    surnames = ["Smith", "García", "Okafor", "Nguyen", "Müller", "O'Brien", "Kowalski, Jr."]
    with open(OUT, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["customer_id", "name", "tenure_months", "monthly_charges", "support_calls", "contract_months"])
        for i in range(1000):
            calls = "" if i % 25 == 7 else int(rng.poisson(1.5))
            w.writerow([f"C{i:05d}", f"{surnames[i % len(surnames)]} {i}", int(rng.integers(0, 72)),
                        round(float(rng.uniform(20, 120)), 2), calls, int(rng.choice([1, 12, 24]))])


if __name__ == "__main__":
    main()
