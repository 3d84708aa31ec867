"""bench/label_noise.py --smoke runs end to end (labeling through the services, one training
per aggregation, a variant, TRL, the scale timing) and prints its figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_label_noise_smoke(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    env.pop("DATABASE_URL", None)  # the bench makes its own SQLite database
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "label_noise.py"), "--smoke"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "best aggregation:" in out and "points over TRL" in out
    figures = json.loads(out.strip().splitlines()[-1])
    assert set(figures["accuracy"]) >= {
        "majority",
        "dawid_skene",
        "glad",
        "mace",
        "TRL on majority",
    }
    assert all(0.0 <= a <= 1.0 for a in figures["accuracy"].values())
    # The scale figures: each aggregation timed on 3,000 votes in a child process.
    assert set(figures["scale"]) == {"majority", "dawid_skene", "glad", "mace"}
    for per_size in figures["scale"].values():
        assert per_size["3000"]["votes"] == 3000 and per_size["3000"]["peak_rss_mb"] > 0
    assert "slowest aggregation of 3,000 votes" in out
