"""Quality, review and downloads at scale: the staff pages over HTTP against a project of
100,000 and 1,000,000 comparisons, on PostgreSQL, under gunicorn (`-w 2`, DEBUG off); the raw
export through the API (202, the job polled, the file downloaded and checked against its
manifest) with a Celery worker; the repeat checks' draw.

    .venv/bin/python bench/quality_scale.py            # 100k, then 1M comparisons
    .venv/bin/python bench/quality_scale.py --sizes 1m --rounds 5
    .venv/bin/python bench/quality_scale.py --smoke    # seconds: 3,000 comparisons, DEBUG on

Per size it creates a throwaway PostgreSQL database (dropped at the end), seeds it with COPY
(`seed_comparisons`: 10 comparisons per pair from 50 labelers, 1% swapped repeats, gold pairs,
scored pairs, four source models), times the background computation of the quality figures
(in this process: its time and peak memory), starts gunicorn and a Redis of its own, logs a
staff member in, and times each request (mean and range over the rounds) with the web
workers' memory before and after each: the growth per request is the most any worker's
resident memory rose over one request, after each kind's first (warm-up) request. It prints
the ratio of each figure to its target (quality API and page < 1 s, review < 300 ms, growth
per request < 50 MiB). Exit 1 when a request failed, 2 when there is no PostgreSQL (BENCH_PG,
default the local server).

`seed_comparisons` and `Server` are meant to be reused by other timings of the same data.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_ADMIN = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench-pass-1"
SLUG = "bench"
MODELS = ("model-alpha", "model-beta", "model-gamma", "model-delta")
WORDS = (
    "the a model answer question reward policy data token train human prefer response "
    "helpful honest clear short long explain because result value python code list"
).split()
# Seconds for the pages and the API, MiB for a web worker's growth over one request.
TARGETS = {"quality_api": 1.0, "quality_page": 1.0, "review_page": 0.3}
TARGET_GROWTH_MIB = 50.0
SIZES = {"smoke": (300, 10), "100k": (10_000, 10), "1m": (100_000, 10)}
REQUESTS = {
    "quality_api": f"/api/projects/{SLUG}/quality/",
    "quality_page": f"/projects/{SLUG}/quality/",
    "review_page": f"/projects/{SLUG}/review/",
}


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The seeding and the computation run as a development process; gunicorn runs DEBUG off.
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()


# --- seeding ----------------------------------------------------------------------------------


def _copy(table: str, columns: list[str], rows) -> int:
    """COPY rows (tuples in `columns` order) into a table; how many."""
    from django.db import connection

    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)  # "left" is a keyword
    n = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _text(rng: np.random.Generator, words: int) -> str:
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), words)).capitalize() + "."


def seed_comparisons(
    *,
    pairs: int,
    labelers: int = 50,
    per_pair: int = 10,
    repeat_share: float = 0.01,
    gold_share: float = 0.02,
    scored_share: float = 0.5,
    slug: str = SLUG,
    seed: int = 0,
):
    """A project of `pairs` pairs, each judged once by `per_pair` of `labelers` labelers
    (`pairs * per_pair` comparisons, plus `repeat_share` of them again as swapped repeats),
    written with PostgreSQL's COPY. Django must be set up on a migrated PostgreSQL database.

    Labelers differ in accuracy (0.55 to 0.95 against a hidden answer per pair), one in ten
    favours the left side; choices are canonical by response with strengths 1-4 on A/B,
    some ties and both-bad; judgments are spread over the last 14 days. Returns the Project.
    """
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from annotate.hashing import content_hash, user_message
    from annotate.models import Comparison, Membership, Pair, Project, Prompt, Response

    rng = np.random.default_rng(seed)
    user_model = get_user_model()
    with transaction.atomic():
        project = Project.objects.create(
            name="Bench", slug=slug, redundancy=per_pair, ask_strength=True
        )
        users = user_model.objects.bulk_create(
            [user_model(username=f"{slug}-labeler{i}") for i in range(labelers)]
        )
        Membership.objects.bulk_create(Membership(project=project, user=u) for u in users)
        user_ids = np.array([u.pk for u in users])

        def first(model) -> int:
            return (model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1

        prompt0, response0, pair0, comparison0 = (
            first(Prompt),
            first(Response),
            first(Pair),
            first(Comparison),
        )
        now = datetime.now(UTC)

        def prompts():
            for i in range(pairs):
                messages = user_message(f"{_text(rng, 10)} (question {i})")
                yield (
                    prompt0 + i,
                    project.pk,
                    json.dumps(messages),
                    "",
                    "{}",
                    content_hash(messages),
                    now,
                )

        _copy(
            Prompt._meta.db_table,
            [
                "id",
                "project_id",
                "messages",
                "external_id",
                "metadata",
                "content_hash",
                "created_at",
            ],
            prompts(),
        )
        lengths = rng.integers(10, 80, size=2 * pairs)
        models = rng.integers(0, len(MODELS), size=2 * pairs)

        def responses():
            for i in range(2 * pairs):
                body = f"{_text(rng, int(lengths[i]))} ({i})"
                yield (
                    response0 + i,
                    prompt0 + i // 2,
                    body,
                    MODELS[models[i]],
                    "{}",
                    "{}",
                    hashlib.sha256(body.encode()).hexdigest(),
                    now,
                )

        _copy(
            Response._meta.db_table,
            [
                "id",
                "prompt_id",
                "text",
                "model_name",
                "metadata",
                "sampling",
                "content_hash",
                "created_at",
            ],
            responses(),
        )
        # The hidden answer of each pair: A, B, tie or both bad.
        truth = rng.choice(
            np.array(["a", "b", "tie", "both_bad"]), size=pairs, p=[0.5, 0.4, 0.07, 0.03]
        )
        gold = np.where(rng.random(pairs) < gold_share, truth, "")
        scored = rng.random(pairs) < scored_share
        model_p = np.clip(np.where(truth == "a", 0.7, 0.3) + rng.normal(0, 0.25, pairs), 0.01, 0.99)

        def pair_rows():
            for i in range(pairs):
                yield (
                    pair0 + i,
                    project.pk,
                    prompt0 + i,
                    response0 + 2 * i,
                    response0 + 2 * i + 1,
                    0.0,
                    float(rng.random()),
                    str(gold[i]),
                    False,
                    per_pair,
                    False,
                    False,
                    float(model_p[i]) if scored[i] else None,
                    None,
                    "",  # no AI judge has read it
                    None,
                    now,
                )

        _copy(
            Pair._meta.db_table,
            [
                *("id", "project_id", "prompt_id", "response_a_id", "response_b_id"),
                *("priority", "random_key", "gold", "is_open", "human_count", "ambiguous"),
                *("added_by_model", "model_p_a", "model_uncertainty"),
                *("judges_choice", "judges_min_p", "created_at"),
            ],
            pair_rows(),
        )

        # Who judges each pair: per_pair distinct labelers drawn at random.
        who = np.argsort(rng.random((pairs, labelers)), axis=1)[:, :per_pair].reshape(-1)
        pair_of = np.repeat(np.arange(pairs), per_pair)
        accuracy = np.linspace(0.55, 0.95, labelers)[who]
        lefty = who % 10 == 3
        n = len(who)
        right = rng.random(n) < accuracy
        wrong = rng.choice(
            np.array(["a", "b", "tie", "both_bad"]), size=n, p=[0.4, 0.4, 0.12, 0.08]
        )
        choice = np.where(right, truth[pair_of], wrong)
        left = np.where(rng.random(n) < 0.5, "a", "b")
        # A lefty labeler picks whatever response is on the left four times in five.
        sided = lefty & np.isin(choice, ["a", "b"]) & (rng.random(n) < 0.8)
        choice = np.where(sided, left, choice)
        strength = np.where(np.isin(choice, ["a", "b"]), rng.integers(1, 5, n), 0)
        ms = np.exp(rng.normal(np.log(9000), 0.6, n)).astype(np.int64)
        offsets = np.sort(rng.random(n)) * 14 * 86400  # 14 days, in id order
        start = now - timedelta(days=14)
        repeat = np.flatnonzero(rng.random(n) < repeat_share)
        # Each comparison's own random key (the repeat checks' probe), from a generator of its
        # own so that the other draws stay as they were.
        keys = np.random.default_rng([seed, 1]).random(n + len(repeat))

        def comparison_rows():
            k = comparison0
            for i in range(n):
                yield (
                    k,
                    pair0 + int(pair_of[i]),
                    project.pk,
                    int(user_ids[who[i]]),
                    "human",
                    str(choice[i]),
                    int(strength[i]) or None,
                    "[]",
                    "",
                    str(left[i]),
                    int(ms[i]),
                    False,
                    bool(gold[pair_of[i]]),
                    None,
                    "",
                    "",
                    float(keys[k - comparison0]),
                    start + timedelta(seconds=float(offsets[i])),
                )
                k += 1
            for i in repeat:
                # The same labeler on the same pair with the sides swapped, a little later.
                flip = rng.random() < 0.2
                again = {"a": "b", "b": "a"}.get(str(choice[i]), "tie") if flip else str(choice[i])
                yield (
                    k,
                    pair0 + int(pair_of[i]),
                    project.pk,
                    int(user_ids[who[i]]),
                    "human",
                    again,
                    int(strength[i]) or None if again in ("a", "b") else None,
                    "[]",
                    "",
                    "b" if left[i] == "a" else "a",
                    int(ms[i]),
                    True,
                    False,
                    None,
                    "",
                    "",
                    float(keys[k - comparison0]),
                    start + timedelta(seconds=float(offsets[i]) + 600),
                )
                k += 1

        written = _copy(
            Comparison._meta.db_table,
            [
                *("id", "pair_id", "project_id", "labeler_id", "source", "choice", "strength"),
                *("reasons", "comment", "left", "time_spent_ms", "is_repeat", "is_gold_check"),
                *("import_batch_id", "import_file", "import_key", "random_key", "created_at"),
            ],
            comparison_rows(),
        )
        Project.objects.filter(pk=project.pk).update(pair_count=pairs, comparison_count=written)
        with connection.cursor() as cursor:
            for model in (Prompt, Response, Pair, Comparison):
                table = model._meta.db_table
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
    with connection.cursor() as cursor:
        # As after any bulk load: statistics for the planner, and autovacuum's first pass kept
        # out of the timings.
        for model in (Prompt, Response, Pair, Comparison):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    project.refresh_from_db()
    return project


# --- the server and its client ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":", 1) for line in f if ":" in line)


class Server:
    """gunicorn (`workers` sync workers, DEBUG off) on the database, with a Redis of its own
    as the Celery broker (a message it publishes never reaches another checkout's worker)."""

    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 2,
        timeout: int = 30,
        debug: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        from scripts.local_redis import start_local_redis

        self.static_root = Path(tempfile.mkdtemp(prefix="quality-scale-static-"))
        self.redis = start_local_redis(workdir=self.static_root)
        self.port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DEBUG": "1" if debug else "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "LOG_LEVEL": "WARNING",
            "STATIC_ROOT": str(self.static_root / "static"),
            "REDIS_URL": self.redis.url,
            "CELERY_BROKER_URL": self.redis.url,
            **(extra_env or {}),
        }
        self.env = env  # a Celery worker of this server's runs with the same
        if not debug:
            # With DEBUG off the pages name hashed static files, which exist after
            # collectstatic (compressing them takes 5-15 s here: the smoke runs DEBUG on).
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=env,
                check=True,
            )
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi",
                *("-b", f"127.0.0.1:{self.port}", "-w", str(workers)),
                *("--timeout", str(timeout), "--log-level", "warning"),
            ],
            cwd=ROOT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                if len(self.workers()) == workers:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def workers(self) -> list[int]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if _status(int(pid)).get("PPid", "").strip() == str(self.process.pid):
                    found.append(int(pid))
            except OSError:
                continue
        return sorted(found)

    def memory(self) -> dict[int, tuple[float, float]]:
        """(resident, peak resident) MiB of each worker."""
        out = {}
        for pid in self.workers():
            status = _status(pid)
            out[pid] = (
                int(status["VmRSS"].split()[0]) / 1024,
                int(status["VmHWM"].split()[0]) / 1024,
            )
        return out

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.redis.stop()
        shutil.rmtree(self.static_root, ignore_errors=True)


class Client:
    """One logged-in browser: session cookie and CSRF token."""

    def __init__(self, port: int, username: str, timeout: float = 600) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.cookies: dict[str, str] = {}
        _, page = self.request("GET", "/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        form = urlencode({"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token})
        status, _ = self.request(
            "POST", "/accounts/login/", form, "application/x-www-form-urlencoded"
        )
        assert status == 302 and "sessionid" in self.cookies, f"login failed: {status}"

    def request(self, method: str, path: str, body: str | None = None, ctype: str = ""):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        if ctype:
            headers["Content-Type"] = ctype
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()  # the server closed the connection: once more on a new one
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, value = header.split(";", 1)[0].split("=", 1)
            self.cookies[name] = value
        return response.status, data


def staff_create(username: str = "bench-staff") -> str:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(
        username=username, password=PASSWORD, is_staff=True, is_superuser=True
    )
    return username


# --- the run ------------------------------------------------------------------------------------


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def time_computation(project) -> dict | None:
    """The background computation in this process: seconds, memory rise (peak over the RSS
    before it, sampled), or None where this checkout has none."""
    try:
        from annotate.services.quality import quality_compute
    except ImportError:
        return None
    before = rss_mib()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak.append(rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    quality_compute(project_id=project.pk)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {"seconds": seconds, "rise_mib": max(peak) - before}


def time_requests(server: Server, client: Client, rounds: int) -> tuple[dict, list[str]]:
    """Each request `rounds` times, in turn: seconds and each one's worker memory growth."""
    results = {name: {"seconds": [], "growth": [], "peak": [], "rise": []} for name in REQUESTS}
    errors = []
    for _ in range(rounds):
        for name, path in REQUESTS.items():
            before = server.memory()
            started = time.perf_counter()
            status, body = client.request("GET", path)
            seconds = time.perf_counter() - started
            after = server.memory()
            if status != 200:
                errors.append(f"{name}: {status} {body[:200]!r}")
            results[name]["seconds"].append(seconds)
            results[name]["growth"].append(
                max(after[pid][0] - before[pid][0] for pid in after if pid in before)
            )
            results[name]["peak"].append(max(rss for rss, _ in after.values()))
            # How far above its memory before the request a worker went during it (known
            # where its peak grew; else at most its earlier peak, and the growth is given).
            results[name]["rise"].append(
                max(
                    after[pid][1] - before[pid][0]
                    if after[pid][1] > before[pid][1]
                    else after[pid][0] - before[pid][0]
                    for pid in after
                    if pid in before
                )
            )
            if name == "quality_api" and status == 200:
                results[name]["status"] = json.loads(body).get("status", "(none)")
    return results, errors


def worker_start(server: Server, log: Path, timeout: float = 120) -> subprocess.Popen:
    """A Celery worker on the default queue (export jobs), with the server's settings; returns
    once it says it is ready, so that its start is not counted in the export's time."""
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default"),
                *("--pool", "solo", "--loglevel", "INFO", "-n", f"bench-{os.getpid()}@%h"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            cwd=ROOT,
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while b" ready." not in log.read_bytes():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError("the Celery worker did not start: " + log.read_text()[-2000:])
        time.sleep(0.2)
    return worker


def _download(client: Client, port: int, path: str, out: Path) -> int:
    """GET `path` into the file `out` a megabyte at a time; the HTTP status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request(
        "GET", path, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())}
    )
    response = conn.getresponse()
    with out.open("wb") as fh:
        while block := response.read(1 << 20):
            fh.write(block)
    conn.close()
    return response.status


def time_export(
    server: Server, client: Client, workdir: Path, timeout: float, smoke: bool = False
) -> dict:
    """The raw export through the API as a client does it: ask (202 and a job), poll the job
    until it has ended, download the file; then check that the zip is whole and that its data
    file's sha256 is the manifest's. Seconds of each step, and the worker's peak memory. The
    smoke runs the job in this process instead of a worker (a worker's start costs more than
    its export; tests/annotate/test_tasks_e2e.py runs a real one)."""
    import zipfile

    worker = None if smoke else worker_start(server, workdir / "worker.log")
    try:
        started = time.perf_counter()
        status, body = client.request("GET", f"/api/projects/{SLUG}/export/?format=raw")
        if status != 202:
            return {"error": f"asked: {status} {body[:200]!r}"}
        job = json.loads(body)
        job_path = "/" + job["url"].split("/", 3)[3]
        if worker is None:
            from django.conf import settings

            from annotate.services.export_jobs import export_job_execute

            settings.MEDIA_ROOT = server.env["MEDIA_ROOT"]
            export_job_execute(job_id=job["id"])
        polls = 0
        while job["status"] in ("queued", "running"):
            if time.perf_counter() - started > timeout:
                return {"error": f"not done after {timeout:.0f} s: {job}"}
            if worker is not None and worker.poll() is not None:
                return {
                    "error": "the worker exited: " + (workdir / "worker.log").read_text()[-2000:]
                }
            if polls:
                time.sleep(0.5)
            status, body = client.request("GET", job_path)
            job = json.loads(body)
            polls += 1
        ready = time.perf_counter() - started
        if job["status"] != "succeeded":
            return {"error": f"the job failed: {job['error']}"}
        pid = worker.pid if worker is not None else os.getpid()
        worker_peak = int(_status(pid)["VmHWM"].split()[0]) / 1024
        zipped = workdir / job["file_name"]
        began = time.perf_counter()
        status = _download(client, server.port, "/" + job["download_url"].split("/", 3)[3], zipped)
        download = time.perf_counter() - began
        if status != 200:
            return {"error": f"download: {status}"}
        with zipfile.ZipFile(zipped) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            digest = hashlib.sha256()
            with archive.open(manifest["file"]) as data:
                while block := data.read(1 << 20):
                    digest.update(block)
        return {
            "rows": job["rows_done"],
            "ready_s": ready,
            "polls": polls,
            "download_s": download,
            "zip_mib": zipped.stat().st_size / 2**20,
            "checksum_ok": digest.hexdigest() == manifest["data_sha256"],
            "manifest_rows": manifest["counts"]["rows"],
            "worker_peak_mib": worker_peak,
        }
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


def time_repeat_checks(project, rounds: int) -> list[float]:
    """Milliseconds of repeat-check draws (annotate.services.checks.repeat_lease), the labelers
    in turn, each draw's lease rolled back so that every draw sees the same data; the first
    draw (connection and caches warming) left out."""
    import random

    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from annotate.services.checks import repeat_lease

    labelers = list(get_user_model().objects.filter(username__startswith=f"{SLUG}-labeler"))
    rng = random.Random(0)
    times = []
    for n in range(rounds + 1):
        with transaction.atomic():
            started = time.perf_counter()
            lease = repeat_lease(
                project=project, labeler=labelers[n % len(labelers)], rng=rng, now=timezone.now()
            )
            elapsed = time.perf_counter() - started
            transaction.set_rollback(True)
        if lease is None:
            raise RuntimeError("a repeat check found no pair")
        if n:
            times.append(elapsed)
    return times


def figure(values: list[float], unit: str, scale: float = 1.0) -> str:
    values = [v * scale for v in values]
    return f"{statistics.mean(values):8.3f} {unit} ({min(values):.3f}-{max(values):.3f})"


def run_size(name: str, args) -> int:
    db_name = f"prefloop_qbench_{os.getpid()}_{name}"
    admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    admin.execute(f'CREATE DATABASE "{db_name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db_name
    try:
        # A child process per size: this one never holds a Django connection, so it can run
        # several sizes and drop each database.
        return _run_child(name, url, args)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()


def _run_child(name: str, url: str, args) -> int:
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            url,
            "--sizes",
            name,
            "--rounds",
            str(args.rounds),
            "--timeout",
            str(args.timeout),
        ],
        cwd=ROOT,
    )
    return result.returncode


def child(url: str, name: str, args) -> int:
    pairs, per_pair = SIZES[name]
    setup_django(url)
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    project = seed_comparisons(pairs=pairs, per_pair=per_pair)
    print(
        f"[{name}] seeded {pairs:,} pairs, {project.comparison_count:,} comparisons "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    username = staff_create()
    computed = time_computation(project)
    repeats = time_repeat_checks(project, 20 if name == "smoke" else 200)
    workdir = Path(tempfile.mkdtemp(prefix="quality-scale-media-"))
    # The smoke's few comparisons go the background way too: its threshold is lowered.
    extra = {"MEDIA_ROOT": str(workdir / "media")}
    if name == "smoke":
        extra["EXPORT_SYNC_MAX_COMPARISONS"] = "1000"
    connections.close_all()
    server = Server(url, timeout=args.timeout, debug=name == "smoke", extra_env=extra)
    try:
        client = Client(server.port, username)
        results, errors = time_requests(server, client, args.rounds)
        exported = time_export(server, client, workdir, timeout=3600, smoke=name == "smoke")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    debug = "on (smoke)" if name == "smoke" else "off"
    print(f"[{name}] {project.comparison_count:,} comparisons, gunicorn -w 2, DEBUG {debug}")
    if computed:
        print(
            f"  background computation {computed['seconds']:8.2f} s, memory rise "
            f"{computed['rise_mib']:.0f} MiB"
        )
    else:
        print("  background computation: none in this checkout (figures computed per request)")
    worst_growth = 0.0
    for key, r in results.items():
        warm = r["growth"][1:] or r["growth"]
        worst_growth = max(worst_growth, max(warm))
        target = TARGETS[key]
        mean = statistics.mean(r["seconds"])
        status = f" status={r['status']}" if "status" in r else ""
        print(
            f"  {key:13s} {figure(r['seconds'], 's')}  target < {target} s  ratio "
            f"{mean / target:.2f}; worker growth {figure(warm, 'MiB')}, peak rise during one "
            f"up to {max(r['rise']):.0f} MiB, worker RSS after up to {max(r['peak']):.0f} MiB"
            f"{status}"
        )
    print(
        f"  worst worker growth per request (after the first of each kind) {worst_growth:.1f} "
        f"MiB  target < {TARGET_GROWTH_MIB:.0f} MiB  ratio {worst_growth / TARGET_GROWTH_MIB:.2f}"
    )
    repeats = sorted(repeats)
    print(
        f"  repeat check  {figure(repeats, 'ms', 1000)} over {len(repeats)} draws, median "
        f"{repeats[len(repeats) // 2] * 1000:.2f} ms (an index probe; sorting cost 56-83 ms at 1M)"
    )
    if "error" in exported:
        errors.append(f"raw export: {exported['error']}")
    else:
        e = exported
        whole = e["checksum_ok"] and e["rows"] == e["manifest_rows"]
        print(
            f"  raw export    202, then ready in {e['ready_s']:8.2f} s ({e['polls']} polls): "
            f"{e['rows']:,} rows, {e['rows'] / e['ready_s']:,.0f} rows/s; download "
            f"{e['zip_mib']:.0f} MiB zip in {e['download_s']:.2f} s; "
            f"{'complete, sha256 as in the manifest' if whole else 'INCOMPLETE or checksum wrong'}; "
            f"worker peak RSS {e['worker_peak_mib']:.0f} MiB"
        )
        if not whole:
            errors.append("raw export: the downloaded file is not the manifest's")
    print(
        f"  this process's peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    if errors:
        print("errors:", *errors[:5], sep="\n  ")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="3,000 comparisons, one round")
    parser.add_argument("--sizes", default=None, help="comma-separated of 100k,1m (default both)")
    parser.add_argument("--rounds", type=int, default=None, help="requests of each kind (5)")
    parser.add_argument("--timeout", type=int, default=30, help="gunicorn worker timeout, s")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a size's own process
    args = parser.parse_args()
    args.rounds = args.rounds or (2 if args.smoke else 5)
    sizes = ["smoke"] if args.smoke else (args.sizes or "100k,1m").split(",")
    if args.child:
        return child(args.child, sizes[0], args)
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        print(f"quality_scale needs PostgreSQL (BENCH_PG={PG_ADMIN}): {exc}", file=sys.stderr)
        return 2
    print(f"load average before: {os.getloadavg()}")
    code = 0
    for name in sizes:
        code = max(code, run_size(name, args))
    print(f"load average after: {os.getloadavg()}")
    return code


if __name__ == "__main__":
    sys.exit(main())
