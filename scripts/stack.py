"""`make run`: migrate, start Redis, seed the demo projects and queue the training runs that
are due (the loop demo's first), start a Celery worker and beat, and the web server on
http://127.0.0.1:8000. Ctrl-C stops everything this started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from scripts.local_redis import LocalRedis, redis_binary, start_local_redis

BASE_DIR = Path(__file__).resolve().parent.parent
HOST, PORT = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


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
        if local_redis:
            local_redis.stop()


if __name__ == "__main__":
    sys.exit(main())
