"""Shared fixtures: users and projects, a real Redis, and a real headless Chromium."""

import os
import shutil
from pathlib import Path

import pytest

from scripts.local_redis import start_local_redis
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.factories import MembershipFactory, ProjectFactory, StaffFactory, UserFactory


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite the test database is a file of this session's own, not memory: the queue
    tests start a real Celery worker process that must open the same database."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture(autouse=True)
def _models_dir(tmp_path, settings):
    """Every test writes trained models into its own folder."""
    settings.MODELS_DIR = tmp_path / "models"
    # A fast hasher: the default PBKDF2 costs a second per user on a busy CPU.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff(db):
    return StaffFactory(username="admin")


@pytest.fixture
def staff_client(client, staff):
    """Django's test client signed in as staff."""
    client.force_login(staff)
    return client


@pytest.fixture
def labeler(db):
    return UserFactory(username="alice")


@pytest.fixture
def project(db, labeler):
    project = ProjectFactory(slug="demo", name="Demo")
    MembershipFactory(project=project, user=labeler)
    return project


@pytest.fixture(scope="session")
def backbone(tmp_path_factory):
    """A tiny BERT reward backbone built from a config, once per session (offline)."""
    from tests.rewardtrain.tiny import make_bert

    return str(make_bert(tmp_path_factory.mktemp("tiny") / "bert"))


@pytest.fixture(scope="session")
def redis_url():
    """A real Redis: the one at REDIS_URL, else a redis-server of the tests' own.

    Each test session uses its own database number on a shared server and flushes it after;
    under pytest-xdist each worker (gw0, gw1, ...) takes its own number.
    """
    url = os.environ.get("REDIS_URL")
    if url:
        import redis

        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        db = 9 + (int(worker[2:]) if worker.startswith("gw") else os.getpid()) % 6
        base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
        session_url = f"{base}/{db}"
        client = redis.Redis.from_url(session_url)
        client.ping()
        yield session_url
        client.flushdb()
        return
    server = start_local_redis()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chromium_path():
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        message = (
            "Browser tests need Debian's Chromium at /usr/bin/chromium: "
            "run `sudo apt-get install -y chromium`."
        )
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@pytest.fixture
def browser(chromium_path, monkeypatch):
    """A real headless Chromium driven by Playwright (never a downloaded browser)."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # around it are ordinary synchronous calls. Set for this test only: left behind, the
    # variable reaches later tests' subprocesses (`check --deploy` refuses it).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
            # ORM calls made while Playwright's loop runs keep their connections in that
            # loop's context, where nothing else closes them: an open one would stop the test
            # database from being dropped on PostgreSQL.
            from django.db import connections

            connections.close_all()


@pytest.fixture(scope="session")
def chat_server(tmp_path_factory):
    """A real `transformers serve` with a tiny random chat model (tests/rewardtrain/tiny.py),
    started once per session on a free port: the OpenAI-compatible endpoint the generation
    tests talk to over real HTTP. Tests that stop it start it again before they end."""
    from scripts.chat_server import ChatServer
    from tests.rewardtrain.tiny import make_chat_lm

    folder = tmp_path_factory.mktemp("chat")
    model = make_chat_lm(folder / "tiny-chat")
    server = ChatServer(model=str(model), log=folder / "serve.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def judge_server(tmp_path_factory):
    """A real `transformers serve` answering judge prompts as the hand-set model of
    tests/annotate/judge_model.py says, logging each request's body (debug level,
    `--enable-log-requests`): the AI judges' tests read what reached the endpoint."""
    from scripts.chat_server import ChatServer
    from tests.annotate.judge_model import make_judge_lm

    folder = tmp_path_factory.mktemp("judge")
    model = make_judge_lm(folder / "tiny-judge")
    server = ChatServer(
        model=str(model),
        log=folder / "serve.log",
        extra_args=("--log-level", "debug", "--enable-log-requests"),
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def serve_key():
    """The API key the keyed server asks for: drawn per session, so no test can know it but by
    this fixture."""
    import secrets

    return f"sk-test-{secrets.token_hex(12)}"


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory, serve_key):
    """A real `transformers serve` with a tiny random chat model that answers 401 to a /v1
    request without `Authorization: Bearer <serve_key>`, as vLLM's `--api-key` does
    (tests/annotate/keyed_serve.py says why and how)."""
    from tests.annotate.keyed_serve import keyed_chat_server
    from tests.rewardtrain.tiny import make_chat_lm

    folder = tmp_path_factory.mktemp("keyed")
    model = make_chat_lm(folder / "keyed-chat")
    server = keyed_chat_server(model=str(model), key=serve_key, log=folder / "serve.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def judge_requests(judge_server):
    """The judge server's request bodies from this test on."""
    from tests.annotate.judge_model import RequestLog

    log = RequestLog(judge_server)
    log.mark()
    return log
