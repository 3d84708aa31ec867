"""The production environment of deploy/prefloop.env (the README's), ready for a test's
subprocesses: a real random SECRET_KEY filled in, paths moved under the test's folder."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
ENV_FILE = BASE_DIR / "deploy" / "prefloop.env"


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """KEY=value lines as systemd's EnvironmentFile reads them (comments and blanks skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def production_env(tmp: Path, **overrides: str) -> dict[str, str]:
    """os.environ without the suite's DEBUG=1 (and its other test-only switches), plus deploy/prefloop.env with its blanks
    filled and its server paths under `tmp`."""
    # The browser fixture's DJANGO_ALLOW_ASYNC_UNSAFE is the test process's own: a production
    # environment never has it (check --deploy says so).
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(read_env_file())
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    for key in ("DATA_DIR", "MODELS_DIR", "STATIC_ROOT"):
        env[key] = env[key].replace("/var/lib/prefloop", str(tmp))
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["PYTHONPATH"] = str(BASE_DIR)
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
