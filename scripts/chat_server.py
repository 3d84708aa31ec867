"""Start and stop `transformers serve` (the `serving` extra of transformers) on a local port:
a real OpenAI-compatible chat endpoint for one model folder. Used by the tests and
bench/generation.py; stopped and started again on the same port, it is a server restart."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts.local_redis import free_port

START_TIMEOUT_S = 120.0


@dataclass
class ChatServer:
    """One `transformers serve` process pinned to `model` (a folder), on 127.0.0.1:port."""

    model: str
    port: int = field(default_factory=free_port)
    log: Path | None = None
    extra_args: tuple[str, ...] = ()  # more `transformers serve` flags
    # What runs `transformers serve`: its own CLI, or a wrapper of it that takes the same
    # arguments (tests/annotate/keyed_serve.py: the same server asking for an API key).
    launcher: tuple[str, ...] = ("-m", "transformers.cli.transformers")
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ChatServer:
        """Start it and wait until /health answers (the model is loaded at start)."""
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        # One intra-op thread: a tiny model gains nothing from more, and on a shared CPU they
        # stall waiting for each other.
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.process = subprocess.Popen(
            [
                *(sys.executable, *self.launcher, "serve", self.model),
                *("--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"),
                *("--device", "cpu"),
                *self.extra_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited at start ({self.output()})")
            if self.healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"transformers serve did not answer within {START_TIMEOUT_S:g} s")

    def healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log else "no log kept"
