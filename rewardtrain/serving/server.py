"""`serve()`: the reward server for one project, wired and run in this process under uvicorn
(not inside the web workers: the model and its batches own this process's cores or GPU)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from rewardtrain.core.device import resolve_device as core_resolve_device
from rewardtrain.serving.app import RewardsApp
from rewardtrain.serving.batcher import Batcher

if TYPE_CHECKING:
    from annotate.models import Project

DEFAULT_PORT = 8100
DEFAULT_MAX_WAIT_MS = 5.0
DEFAULT_MAX_ITEMS = 1024
# Padded tokens per forward (rows x longest row). On a CPU small batches of similar length are
# fastest (MiniLM on 2 cores: 1,024 tokens per batch took 0.82 ms per token, 16,384 took 1.15:
# the big matrices fall out of cache); a GPU wants many rows in flight.
DEFAULT_MAX_BATCH_TOKENS = {"cpu": 1024, "cuda": 65536}


class ServeError(ValueError):
    """Settings the server cannot start with."""


def resolve_device(device: str) -> str:
    """The core's resolver ("" = cuda when present, else cpu), and a ServeError for a device
    this server cannot use: a named one is checked before any model is loaded."""
    import torch

    if not device:
        return core_resolve_device(device)
    try:
        kind = torch.device(device).type
    except RuntimeError as exc:
        raise ServeError(f"unknown device {device!r}: use cpu or cuda") from exc
    if kind == "cuda" and not torch.cuda.is_available():
        raise ServeError(f"device {device!r} asked for, but this machine has no CUDA device")
    if kind not in ("cpu", "cuda"):
        raise ServeError(f"unknown device {device!r}: use cpu or cuda")
    return device


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    *,
    project: Project,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    device: str = "",
    max_batch_tokens: int | None = None,
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    max_items: int = DEFAULT_MAX_ITEMS,
    no_auth: bool = False,
    say: Callable[[str], None] = print,
) -> None:
    """Load the project's active model, listen, and serve until SIGINT or SIGTERM."""
    import uvicorn

    from rewardtrain.serving.active import ActiveModel
    from rewardtrain.serving.auth import TokenAuth

    _check_options(host, no_auth, max_batch_tokens, max_wait_ms, max_items)
    device = resolve_device(device)
    tokens = max_batch_tokens or DEFAULT_MAX_BATCH_TOKENS[device.split(":")[0]]

    active = ActiveModel(project_id=project.pk, device=device)
    active.refresh()
    if active() is None:
        _import_model_code()
    batcher = Batcher(active, max_batch_tokens=tokens, max_wait_s=max_wait_ms / 1000)
    auth = None if no_auth else TokenAuth()
    app = RewardsApp(
        batcher=batcher,
        model=active,
        project=project.slug,
        device=device,
        auth=auth,
        max_items=max_items,
        model_error=lambda: active.error,
    )
    sock = _listen(host, port)
    current = active()
    say(
        f"Project {project.slug}: model version {current.version} on {device}"
        if current
        else f"Project {project.slug}: no active model yet; answering 503 until one is activated"
    )
    if active.error:
        say(f"The active {active.error}")
    _say_settings(say, sock, host, no_auth, tokens, max_wait_ms)
    batcher.start()
    active.start()
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        active.stop()
        batcher.stop()
        if auth is not None:
            auth.close()
        sock.close()


def _check_options(
    host: str, no_auth: bool, max_batch_tokens: int | None, max_wait_ms: float, max_items: int
) -> None:
    if no_auth and not is_loopback(host):
        raise ServeError(
            f"--no-auth listens on the loopback interface only, not {host}: "
            "drop --host, or keep auth and give trainers an API token"
        )
    for name, value in (("--max-items", max_items), ("--max-batch-tokens", max_batch_tokens)):
        if value is not None and value < 1:
            raise ServeError(f"{name} must be at least 1")
    if max_wait_ms < 0:
        raise ServeError("--max-wait-ms cannot be negative")


def _say_settings(
    say: Callable[[str], None],
    sock: socket.socket,
    host: str,
    no_auth: bool,
    tokens: int,
    max_wait_ms: float,
) -> None:
    """The server's auth, batching and address, as the operator reads them at start."""
    say(
        "No auth: listening on the loopback interface only; anyone on this machine can score."
        if no_auth
        else "Auth: API tokens of staff or of users with the 'may score' permission."
    )
    say(f"Batches of up to {tokens} padded tokens, waiting up to {max_wait_ms:g} ms.")
    shown = f"[{host}]" if ":" in host else host
    bound = sock.getsockname()[1]
    say(f"Listening on http://{shown}:{bound} (POST /v1/rewards, POST /get_reward, GET /health)")


def _import_model_code() -> None:
    """Import what loading a model needs (seconds of work on a busy machine) before there is a
    model to load, so that the first activation is served within seconds."""
    import transformers.modeling_utils  # noqa: F401
    import transformers.models.auto.modeling_auto  # noqa: F401
    import transformers.tokenization_utils_fast  # noqa: F401


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
