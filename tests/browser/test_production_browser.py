"""The production web server as deploy/ runs it: `collectstatic`, then gunicorn with
DEBUG=0 and the README's production environment. A labeler signs in and labels a pair in
Chromium; the page's CSS and JS come from the app (whitenoise) under hashed names, compressed,
cached for a year. Served over plain HTTP on the loopback: the test has no TLS proxy, so the
three HTTPS-only settings are turned off here (deploy/nginx does TLS in production)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import global_settings

from annotate.models import Comparison
from tests.browser.test_labeling_browser import PASSWORD, shown_pair, wait_for_change
from tests.config.production_env import BASE_DIR, manage, production_env
from tests.factories import make_pair
from tests.rewardtrain.queue_helpers import database_url

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


@pytest.fixture
def production_web(tmp_path, db):
    """gunicorn config.wsgi with DEBUG=0 on the test database, after collectstatic."""
    port = free_port()
    env = production_env(
        tmp_path,
        DATABASE_URL=database_url(),
        ALLOWED_HOSTS="127.0.0.1",
        CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{port}",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
    )
    collected = manage("collectstatic", "--noinput", env=env, timeout=300)
    assert collected.returncode == 0, collected.stderr
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
        server.terminate()
        server.wait(timeout=30)


def test_a_labeler_labels_through_gunicorn_with_debug_off(
    browser, production_web, project, labeler, settings
):
    base_url, static_root = production_web
    # The server checks passwords with the production hashers, not the suite's fast one.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    labeler.set_password(PASSWORD)
    labeler.save(update_fields=["password"])
    make_pair(project, "Capital of Australia?", a="Canberra.", b="Sydney.")
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

    comparison = Comparison.objects.get(labeler=labeler)
    assert comparison.pair_id == pair_id
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
