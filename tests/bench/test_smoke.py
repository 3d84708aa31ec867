"""Every benchmark found in bench/ runs in its --smoke mode, in a subprocess: it exits 0, prints
its figures, and leaves the tracked tree as it was (outputs go elsewhere unless given a path).
A bench with a smoke test of its own (tests/bench/test_<name>.py, checking its figures in more
detail) is run there instead, not twice.
A bench that cannot run on this machine says so and exits 2, naming what it needs (CUDA,
PostgreSQL); that is checked too: the thing it names must really be missing here."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BENCHES = sorted((ROOT / "bench").glob("*.py"))
OWN_TESTS = {path.stem.removeprefix("test_") for path in Path(__file__).parent.glob("test_*.py")}
GENERIC = [bench for bench in BENCHES if bench.stem not in OWN_TESTS]
# Generous for a loaded CI machine; a smoke run takes seconds to a minute.
TIMEOUT_S = 900


def _cuda_missing() -> bool:
    import torch

    return not torch.cuda.is_available()


def _postgres_missing() -> bool:
    import psycopg

    url = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres")
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError:
        return True
    return False


# What a bench may need that a machine may lack, and how to tell that it is missing.
REQUIREMENTS = {"CUDA": _cuda_missing, "PostgreSQL": _postgres_missing}


def _tree_state() -> dict[str, tuple[int, int]]:
    """(mtime, size) of every tracked file and every untracked file git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    state = {}
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if path.is_file():
            stat = path.stat()
            state[name] = (stat.st_mtime_ns, stat.st_size)
    return state


def test_the_benches_are_found_and_each_has_a_smoke_run():
    assert {
        "active_learning.py",
        "ai_judges.py",
        "export_1m.py",
        "generation.py",
        "judge_first_lease.py",
        "labeling_load.py",
        "quality_scale.py",
        "ranking_efficiency.py",
        "real_preferences.py",
    } <= {p.name for p in BENCHES}
    for bench in BENCHES:
        assert "--smoke" in bench.read_text(), f"{bench.name} has no --smoke mode"
    assert {bench.stem for bench in BENCHES} <= {b.stem for b in GENERIC} | OWN_TESTS


@pytest.mark.slow
@pytest.mark.parametrize("bench", GENERIC, ids=lambda path: path.stem)
def test_bench_smoke_run(bench: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env["PYTHONPATH"] = str(ROOT)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    before = _tree_state()
    result = subprocess.run(
        [sys.executable, str(bench), "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    assert _tree_state() == before, "the bench wrote into the tracked tree"
    if result.returncode == 2:
        needs = [name for name in REQUIREMENTS if re.search(rf"\b{name}\b", output)]
        assert needs, f"exit 2 without naming what it needs:\n{output[-3000:]}"
        assert all(REQUIREMENTS[name]() for name in needs), (
            f"{bench.name} says it needs {needs}, which this machine has:\n{output[-3000:]}"
        )
        return
    assert result.returncode == 0, output[-3000:]
    assert re.search(r"\d", result.stdout), f"no figures printed:\n{output[-3000:]}"
