"""bench/serve_rewards.py --smoke runs end to end and prints its figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_serve_rewards_bench_smoke():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "serve_rewards.py"), "--smoke"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for kind in ("naive", "batched"):
        assert f"run 1 {kind}" in out and " 0 errors)" in out
    assert "largest reward difference" in out
    assert "batched / naive: items/s" in out and "p99" in out
