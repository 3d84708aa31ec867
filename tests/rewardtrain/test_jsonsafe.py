"""rewardtrain/core/jsonsafe.py: what a JSON column may hold (PostgreSQL's jsonb refuses NaN)."""

import json
import math
from pathlib import Path

import numpy as np

from rewardtrain.core.jsonsafe import finite_number, json_safe


def test_numpy_values_become_python_and_non_finite_floats_become_none():
    value = {
        "accuracy": np.float32(0.75),
        "n": np.int64(3),
        "curve": np.array([0.5, np.nan, np.inf]),
        "bins": (1, -math.inf),
        7: Path("/models/3"),
        "ok": True,
        "none": None,
    }
    safe = json_safe(value)
    assert safe == {
        "accuracy": 0.75,
        "n": 3,
        "curve": [0.5, None, None],
        "bins": [1, None],
        "7": "/models/3",
        "ok": True,
        "none": None,
    }
    assert type(safe["n"]) is int and type(safe["accuracy"]) is float
    # allow_nan=False: what PostgreSQL would refuse raises here.
    json.dumps(safe, allow_nan=False)


def test_finite_number_reads_numbers_only():
    assert finite_number(np.float64(2.5)) == 2.5
    assert finite_number(3) == 3.0
    assert finite_number(float("nan")) is None
    assert finite_number(True) is None
    assert finite_number("0.5") is None
