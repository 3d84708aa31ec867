"""The reward server for real: `manage.py serve_rewards` in its own process on a free port,
reading the test database, and two saved tiny-BERT versions of the demo project."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from rewardtrain.models import ModelVersion
from tests.rewardtrain.queue_helpers import BASE_DIR, database_url
from tests.rewardtrain.tiny import make_bert

READY = re.compile(r"Listening on (http://\S+)")


class Server:
    """A serve_rewards process; its output is collected line by line as it comes."""

    def __init__(self, args: list[str], models_dir: Path) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "MODELS_DIR": str(models_dir),
            "PYTHONPATH": str(BASE_DIR),
            "PYTHONUNBUFFERED": "1",
            # Tiny models gain nothing from intra-op threads on a shared CPU.
            "OMP_NUM_THREADS": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve_rewards", *args],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def wait_ready(self, timeout: float = 180) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if match := READY.search(line):
                    self.url = match.group(1)
                    return self
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                pytest.fail(f"serve_rewards exited ({self.process.returncode}):\n{self.output()}")
            time.sleep(0.05)
        pytest.fail(f"serve_rewards did not start in {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


@pytest.fixture
def start_server(settings, transactional_db):
    """Start serve_rewards processes on the test database; all stop at the end of the test."""
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(["--port", "0", "--device", "cpu", *args], Path(settings.MODELS_DIR))
        servers.append(server)
        return server.wait_ready()

    yield start
    for server in servers:
        server.stop()


def post(url: str, body: Any, *, token: str | None = None, raw: bytes | None = None):
    """(status, JSON answer) of a POST; error statuses are answers too."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = token if " " in token else f"Token {token}"
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    return _send(request)


def get(url: str):
    return _send(urllib.request.Request(url, method="GET"))


def _send(request: urllib.request.Request):
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            assert answer.headers["Content-Type"] == "application/json"
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        assert exc.headers["Content-Type"] == "application/json", exc.read()[:200]
        return exc.code, json.loads(exc.read())


def wait_until(check, *, what: str, timeout: float, server: Server | None = None) -> Any:
    """Poll until check() returns something truthy; fail after `timeout` s (a deadline on an
    outcome, not a sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}" + (f":\n{server.output()}" if server else ""))


def saved_version(project, folder: Path, version: int, *, active: bool, seed: int) -> ModelVersion:
    make_bert(folder, seed=seed)
    (folder / "prefloop.json").write_text(json.dumps({"format": 1, "max_length": 48}))
    return ModelVersion.objects.create(
        project=project,
        version=version,
        path=str(folder),
        backbone="tiny-bert",
        is_active=active,
        promotion={"promoted": active, "reason": "test", "compared_to": None},
    )


@pytest.fixture
def versions(project, tmp_path):
    """Versions 1 and 2 of the demo project (different weights), neither active yet."""
    return (
        saved_version(project, tmp_path / "v1", 1, active=False, seed=1),
        saved_version(project, tmp_path / "v2", 2, active=False, seed=2),
    )
