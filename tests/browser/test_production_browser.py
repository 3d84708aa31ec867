"""The production stack as deploy/ runs it: `collectstatic`, then gunicorn, a Celery worker
and beat, all with DEBUG=0 and the README's production environment, on the test database and
the test Redis (PostgreSQL and a Redis server in CI). A labeler signs in and labels a pair in
Chromium; the page's CSS and JS come from the app (whitenoise) under hashed names, compressed,
cached for a year; the new comparison makes the project due, beat queues the retraining and the
worker trains and promotes a model. Served over plain HTTP on the loopback: the test has no TLS
proxy, so the three HTTPS-only settings are turned off here (deploy/nginx does TLS)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import global_settings

from annotate.models import Comparison, Project
from rewardtrain.models import ModelVersion, TrainingRun
from rewardtrain.selectors.dashboard import TERMINAL
from tests.browser.test_labeling_browser import PASSWORD, shown_pair, wait_for_change
from tests.config.production_env import BASE_DIR, manage, production_env
from tests.rewardtrain.queue_helpers import (  # noqa: F401 - a fixture
    WORKER_ARGS,
    Worker,
    broker,
    database_url,
    seed_labeled_project,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited:\n{log.read_text()[-4000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"the server did not listen within {timeout} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory) -> Path:
    """`collectstatic` as deployed, once per session: it hashes and compresses every file."""
    folder = tmp_path_factory.mktemp("collected")
    env = production_env(folder, STATIC_ROOT=str(folder / "static"))
    collected = manage("collectstatic", "--noinput", env=env, timeout=300)
    assert collected.returncode == 0, collected.stderr
    return folder / "static"


@pytest.fixture
def production_env_here(tmp_path, db, broker, settings, collected_static):  # noqa: F811
    """The production environment on this test's database, Redis and model folder."""
    port = free_port()
    env = production_env(
        tmp_path,
        DATABASE_URL=database_url(),
        REDIS_URL=broker,
        MODELS_DIR=str(settings.MODELS_DIR),
        STATIC_ROOT=str(collected_static),
        TRAINING_DEVICE="cpu",
        ALLOWED_HOSTS="127.0.0.1",
        CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{port}",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        # Beat looks for due projects every second instead of every five minutes.
        RETRAIN_CHECK_SECONDS="1",
    )
    return port, env


@pytest.fixture
def production_web(tmp_path, production_env_here):
    """gunicorn config.wsgi with DEBUG=0, serving the collected static files."""
    port, env = production_env_here
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "-w", "1"]
            + ["-b", f"127.0.0.1:{port}"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, server, log)
        yield f"http://127.0.0.1:{port}", Path(env["STATIC_ROOT"])
    finally:
        # SIGINT is gunicorn's quick shutdown; SIGTERM would wait out open keep-alive
        # connections of the browser.
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


@pytest.fixture
def production_celery(tmp_path, production_env_here, broker, settings):  # noqa: F811
    """A worker of both queues and beat, as deploy/systemd starts them, with DEBUG=0."""
    _, env = production_env_here
    common = {"broker_url": broker, "models_dir": Path(settings.MODELS_DIR), "base_env": env}
    worker = Worker(log=tmp_path / "worker.log", args=WORKER_ARGS, **common)
    beat_args = ("beat", "-s", str(tmp_path / "beat-schedule"), "--loglevel", "INFO")
    beat = Worker(log=tmp_path / "beat.log", args=beat_args, **common)
    try:
        yield worker, beat
    finally:
        # Both asked to stop at once, then waited for.
        for process in (beat, worker):
            process.process.terminate()
        beat.stop()
        worker.stop()


def test_a_labeler_labels_and_the_model_retrains_through_the_production_stack(
    browser, production_web, production_celery, project, labeler, settings, tmp_path
):
    base_url, static_root = production_web
    worker, beat = production_celery
    # The server checks passwords with the production hashers, not the suite's fast one.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    labeler.set_password(PASSWORD)
    labeler.save(update_fields=["password"])
    seed_labeled_project(
        project,
        labeler,
        tmp_path / "tiny-bert",
        per_split={"train": 16, "validation": 4, "test": 4},
        open_pairs=1,
    )
    # Due once one more comparison arrives: the one labeled below.
    labeled = Project.objects.get(pk=project.pk).comparison_count
    Project.objects.filter(pk=project.pk).update(
        auto_retrain=True, retrain_min_new_comparisons=labeled + 1
    )
    assert (static_root / "staticfiles.json").exists()

    page = browser.new_page()
    assets = {}
    page.on("response", lambda r: assets.update({r.url: r}) if "/static/" in r.url else None)
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", labeler.username)
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")
    page.wait_for_load_state()
    assert page.url == f"{base_url}/", page.content()[:3000]
    page.goto(f"{base_url}/projects/demo/label/")
    pair_id, _, _ = shown_pair(page)  # label.js ran: it leased the pair through the API
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    wait_for_change(page, pair_id)

    comparison = Comparison.objects.get(labeler=labeler, pair_id=pair_id)
    assert comparison.source == Comparison.Source.HUMAN
    styled = {url.rsplit("/", 1)[1]: r for url, r in assets.items()}
    names = sorted(styled)
    assert any(n.startswith("app.") and n.endswith(".css") and n != "app.css" for n in names)
    assert any(n.startswith("label.") and n.endswith(".js") and n != "label.js" for n in names)
    for name, response in styled.items():
        assert response.status == 200, name
        headers = response.all_headers()
        assert "max-age=315360000" in headers["cache-control"], (name, headers)
        assert headers.get("content-encoding") in {"gzip", "br"}, (name, headers)
    # The page is styled: the stylesheet's rules apply.
    assert page.evaluate("getComputedStyle(document.body).margin") != "8px"
    page.close()

    # Beat found the project due on the new comparison; the worker trained on it.
    run = wait_for(
        lambda: TrainingRun.objects.filter(project=project, status__in=TERMINAL).first(),
        what="beat's retraining to end",
        timeout=240,
        worker=worker,
    )
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error + worker.output()
    assert run.trigger == TrainingRun.Trigger.THRESHOLD
    assert run.comparison_count_at_start == labeled + 1
    version = ModelVersion.objects.get(run=run)
    assert version.is_active
    assert beat.process.poll() is None, beat.output()
