"""Load test of labeling over HTTP: N simulated labelers lease the next pair and submit a
judgment, again and again, against the app under gunicorn on PostgreSQL.

    .venv/bin/python bench/labeling_load.py [--labelers 32] [--pairs 100000] [--seconds 30]
    .venv/bin/python bench/labeling_load.py --smoke    # seconds: 4 labelers, 400 pairs, 3 s

It creates a throwaway PostgreSQL database (dropped at the end), 100,000 pairs in one project
(bulk_create), one account per labeler, starts gunicorn, logs every labeler in (session auth),
runs the load, and prints comparisons/s, the p50/p99 latency of each call, the ratio to the
target (>= 100 comparisons/s and p99 < 200 ms at 32 labelers), and the PostgreSQL plan of the
leasing query at full size. It exits 1 when a request failed or a pair got more judgments than
its redundancy, and 2 when it finds no PostgreSQL (BENCH_PG, default the local server).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench-pass-1"
TARGET_RATE, TARGET_P99_MS = 100.0, 200.0
LOGIN_TIMEOUT_S, REQUEST_TIMEOUT_S = 300, 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # A benchmark is a development run: the development key and settings.
    os.environ.setdefault("DEBUG", "1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed(n_pairs: int, n_labelers: int) -> str:
    """Bulk-create the project, its pairs and the labelers; returns the project slug."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command

    from annotate.hashing import content_hash, user_message
    from annotate.models import Membership, Pair, Project, Prompt, Response
    from annotate.services.bulk import analyze

    call_command("migrate", verbosity=0)
    project = Project.objects.create(
        name="Bench", slug="bench", redundancy=2, reason_tags=["accurate", "concise"]
    )
    per_prompt = 5  # 5 responses give 10 pairs per prompt
    n_prompts = -(-n_pairs // 10)
    batch = 5000
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(
                project=project,
                messages=user_message(f"Question {i}: explain **topic {i}** briefly."),
                content_hash=content_hash(
                    user_message(f"Question {i}: explain **topic {i}** briefly.")
                ),
            )
            for i in range(n_prompts)
        ],
        batch_size=batch,
    )
    responses = Response.objects.bulk_create(
        [
            Response(
                prompt=p,
                text=f"Answer {j} to prompt {p.pk}.\n\n```python\nprint({j})\n```",
                content_hash=content_hash(f"{p.pk}-{j}"),
            )
            for p in prompts
            for j in range(per_prompt)
        ],
        batch_size=batch,
    )
    pairs = []
    for k, p in enumerate(prompts):
        rs = responses[k * per_prompt : (k + 1) * per_prompt]
        for x in range(per_prompt):
            for y in range(x + 1, per_prompt):
                pairs.append(
                    Pair(project=project, prompt=p, response_a=rs[x], response_b=rs[y], priority=0)
                )
    Pair.objects.bulk_create(pairs[:n_pairs], batch_size=batch)
    Project.objects.filter(pk=project.pk).update(pair_count=min(n_pairs, len(pairs)))
    User = get_user_model()
    hashed = make_password(PASSWORD)
    users = User.objects.bulk_create(
        [User(username=f"bench{i}", password=hashed) for i in range(n_labelers)]
    )
    Membership.objects.bulk_create([Membership(project=project, user=u) for u in users])
    # Statistics for the tables the seed filled, as an import takes them
    # (annotate/services/bulk.py); the comparison and lease tables stay as a new deployment
    # leaves them, unanalyzed. VACUUM too, as after any bulk load: otherwise autovacuum's
    # first pass over 160,000 new rows lands inside the measured 30 s as a one-second stall
    # of every commit. The run prints autovacuum's activity to show it stayed out.
    analyze([Project, Prompt, Response, Pair, User, Membership])
    from django.db import connection

    with connection.cursor() as cursor:
        for model in (Prompt, Response, Pair):
            cursor.execute(f"VACUUM {connection.ops.quote_name(model._meta.db_table)}")
    return project.slug


def wal_position() -> int:
    """Bytes of WAL the server has written so far (all databases)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        return int(cursor.fetchone()[0])


def autovacuum_runs() -> dict[str, tuple[int, int]]:
    """(autovacuum runs, autoanalyze runs) so far per table of the bench database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables"
        )
        return {name: (vacuums, analyzes) for name, vacuums, analyzes in cursor.fetchall()}


def lease_plan(slug: str) -> str:
    """EXPLAIN ANALYZE of the leasing query for a labeler who already judged some pairs."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from annotate.models import Project
    from annotate.services.labeling import lease_candidate_plan

    project = Project.objects.get(slug=slug)
    labeler = get_user_model().objects.get(username="bench0")
    with transaction.atomic():
        plan = lease_candidate_plan(
            project=project, labeler=labeler, random_order=False, analyze=True
        )
        transaction.set_rollback(True)
    return plan


class Labeler(threading.Thread):
    def __init__(self, port: int, username: str, slug: str, seconds: float, start) -> None:
        super().__init__(daemon=True)
        self.port, self.username, self.slug, self.seconds = port, username, slug, seconds
        self.start_line = start
        self.next_ms: list[float] = []
        self.submit_ms: list[float] = []
        self.created = 0
        self.done_at: list[float] = []  # perf_counter() of each stored comparison
        self.errors: list[str] = []
        self.cookies: dict[str, str] = {}

    def request(self, conn, method: str, path: str, body: str | None = None, ctype: str = ""):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        if ctype:
            headers["Content-Type"] = ctype
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed an idle keep-alive connection: reconnect once.
            conn.close()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
        data = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, value = header.split(";", 1)[0].split("=", 1)
            self.cookies[name] = value
        return response.status, data

    def login(self, conn) -> None:
        status, page = self.request(conn, "GET", "/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        form = urlencode(
            {"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": token}
        )
        status, _ = self.request(
            conn, "POST", "/accounts/login/", form, "application/x-www-form-urlencoded"
        )
        assert status == 302 and "sessionid" in self.cookies, f"login failed: {status}"

    def run(self) -> None:
        # Logging in hashes the password (PBKDF2, deliberately slow): done before the clock,
        # 32 at once, which on a busy machine takes longer than any labeling request may.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=LOGIN_TIMEOUT_S)
        try:
            self.login(conn)
        except (OSError, AssertionError) as error:
            # The others wait at the start line for this one: break it, or the run hangs.
            self.errors.append(f"login {error!r}")
            self.start_line.abort()
            return
        conn.timeout = REQUEST_TIMEOUT_S
        if conn.sock is not None:
            conn.sock.settimeout(REQUEST_TIMEOUT_S)
        try:
            self.start_line.wait()
        except threading.BrokenBarrierError:
            return
        try:
            self.label(conn)
        except OSError as error:
            # A request that timed out is a failed request, not a quietly shorter run.
            self.errors.append(f"request {error!r}")

    def label(self, conn) -> None:
        stop_at = time.perf_counter() + self.seconds
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            status, data = self.request(conn, "GET", f"/api/projects/{self.slug}/next/")
            t1 = time.perf_counter()
            self.next_ms.append((t1 - t0) * 1000)
            if status == 204:
                return
            if status != 200:
                self.errors.append(f"next {status}")
                continue
            pair = json.loads(data)
            body = json.dumps(
                {
                    "pair_id": pair["pair_id"],
                    "preferred": pair["responses"][0]["id"],
                    "time_spent_ms": 1000,
                }
            )
            t2 = time.perf_counter()
            status, _ = self.request(conn, "POST", "/api/comparisons/", body, "application/json")
            self.submit_ms.append((time.perf_counter() - t2) * 1000)
            if status == 201:
                self.created += 1
                self.done_at.append(time.perf_counter())
            else:
                self.errors.append(f"submit {status}")


class Watcher(threading.Thread):
    """What the machine was doing besides the load, sampled through the run: gaps in this
    process's own scheduling (a thread that sleeps 5 ms and wakes late: the host stalled or
    the CPU was starved), and what the bench database's backends were waiting on
    (pg_stat_activity, every 50 ms: locks, WAL writes and syncs, client reads)."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        self.database_url = database_url
        self.stop = threading.Event()
        self.gaps_ms: list[float] = []
        self.waits: dict[str, int] = {}
        self.samples = 0
        self.timeline: list[tuple[float, list[str]]] = []  # (perf_counter, events) per sample

    def run(self) -> None:
        db_name = self.database_url.rsplit("/", 1)[1]
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            next_sample = time.perf_counter()
            while not self.stop.is_set():
                before = time.perf_counter()
                time.sleep(0.005)
                self.gaps_ms.append((time.perf_counter() - before - 0.005) * 1000)
                if time.perf_counter() >= next_sample:
                    next_sample += 0.05
                    rows = conn.execute(
                        "SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU')"
                        " FROM pg_stat_activity WHERE datname = %s AND state = 'active'"
                        " AND pid <> pg_backend_pid()",
                        [db_name],
                    ).fetchall()
                    self.samples += 1
                    self.timeline.append((time.perf_counter(), [event for (event,) in rows]))
                    for (event,) in rows:
                        self.waits[event] = self.waits.get(event, 0) + 1


def cpu_seconds_by_program(server_pid: int) -> dict[str, float]:
    """CPU seconds so far of every process on the machine, summed by program name: shows
    where the load's CPU went (client, this run's gunicorn, postgres). Another gunicorn on
    the machine counts as other."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        if server_pid in (int(pid), int(fields[1])):
            name = f"gunicorn {pid}"
        elif int(pid) == os.getpid():
            name = "load client"
        elif stat.split("(", 1)[1].startswith("postgres"):
            name = "postgres"
        else:
            name = "other"
        totals[name] = totals.get(name, 0.0) + cpu
    return totals


def worker_peak_rss_mib(master_pid: int) -> list[float]:
    """Peak resident memory of each gunicorn worker (children of the master)."""
    peaks = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if status.get("PPid", "").strip() == str(master_pid) and "VmHWM" in status:
            peaks.append(int(status["VmHWM"].split()[0]) / 1024)
    return sorted(peaks, reverse=True)


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else 0.0
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="4 labelers, 400 pairs, 3 s")
    parser.add_argument("--labelers", type=int, default=None, help="default 32")
    parser.add_argument("--pairs", type=int, default=None, help="default 100,000")
    parser.add_argument("--seconds", type=float, default=None, help="default 30")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument(
        "--worker-class",
        default="sync",
        help="gunicorn worker class: sync (the README's deployment) or gthread",
    )
    parser.add_argument(
        "--worker-connections",
        type=int,
        default=0,
        help="gthread: most client connections one worker holds (0 = gunicorn's default)",
    )
    args = parser.parse_args()
    args.labelers = args.labelers or (4 if args.smoke else 32)
    args.pairs = args.pairs or (400 if args.smoke else 100_000)
    args.seconds = args.seconds or (3.0 if args.smoke else 30.0)
    return args


def start_server(
    args: argparse.Namespace, database_url: str, static_root: Path
) -> tuple[subprocess.Popen, int]:
    """gunicorn serving the app with production settings; returns it once it accepts
    connections (or after 10 s), with its port."""
    port = free_port()
    # Production settings, served over plain HTTP on the loopback (no TLS proxy here).
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "LOG_LEVEL": "WARNING",
        "STATIC_ROOT": str(static_root),
    }
    # As in a deployment: with DEBUG off the pages name hashed static files, which exist
    # only after collectstatic (without it every page answers 500).
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-k",
            args.worker_class,
            "-w",
            str(args.workers),
            *(
                ["--threads", str(args.threads), "--keep-alive", "60"]
                if args.worker_class == "gthread"
                else []
            ),
            *(
                ["--worker-connections", str(args.worker_connections)]
                if args.worker_connections
                else []
            ),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return server, port


@dataclass
class Load:
    """What one run of the load measured, for the report."""

    labelers: list[Labeler]
    watcher: Watcher
    t_start: float
    elapsed: float
    cpu_spent: dict[str, float]  # CPU seconds by program during the load
    busy: float  # share of the machine's CPU time that was busy
    autovacuum_before: dict[str, tuple[int, int]]
    wal_before: int

    @property
    def created(self) -> int:
        return sum(lab.created for lab in self.labelers)


def run_load(
    args: argparse.Namespace, port: int, slug: str, database_url: str, server_pid: int
) -> Load | None:
    """Every labeler signs in, then all label at once for --seconds; None when one could not
    sign in."""
    start = threading.Barrier(args.labelers + 1)
    labelers = [Labeler(port, f"bench{i}", slug, args.seconds, start) for i in range(args.labelers)]
    for labeler in labelers:
        labeler.start()
    autovacuum_before = autovacuum_runs()
    wal_before = wal_position()
    watcher = Watcher(database_url)
    watcher.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        watcher.stop.set()
        failed = [e for lab in labelers for e in lab.errors]
        print(f"a labeler could not sign in: {failed[:3]}", file=sys.stderr)
        return None
    t_start = time.perf_counter()
    cpu_before, busy_before = cpu_seconds_by_program(server_pid), machine_busy()
    for labeler in labelers:
        labeler.join()
    elapsed = time.perf_counter() - t_start
    watcher.stop.set()
    watcher.join()
    cpu_after, busy_after = cpu_seconds_by_program(server_pid), machine_busy()
    return Load(
        labelers=labelers,
        watcher=watcher,
        t_start=t_start,
        elapsed=elapsed,
        cpu_spent={k: cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0) for k in cpu_after},
        busy=(busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1),
        autovacuum_before=autovacuum_before,
        wal_before=wal_before,
    )


def report_speed(args: argparse.Namespace, load: Load) -> list[str]:
    """Comparisons/s and latencies against their targets; returns the failed requests."""
    next_ms = [x for lab in load.labelers for x in lab.next_ms]
    submit_ms = [x for lab in load.labelers for x in lab.submit_ms]
    errors = [e for lab in load.labelers for e in lab.errors]
    rate = load.created / load.elapsed
    p99 = max(pct(next_ms, 99), pct(submit_ms, 99))
    print(
        f"\n{args.labelers} labelers, gunicorn {args.worker_class} "
        + (
            f"{args.workers}x{args.threads} threads"
            if args.worker_class == "gthread"
            else f"{args.workers} workers"
        )
        + f", {args.seconds:.0f} s"
    )
    print(
        f"comparisons/s: {rate:.1f}  (target >= {TARGET_RATE:.0f}: ratio {rate / TARGET_RATE:.2f})"
    )
    print(
        f"GET  next      p50 {pct(next_ms, 50):6.1f} ms   p99 {pct(next_ms, 99):6.1f} ms   n={len(next_ms)}"
    )
    print(
        f"POST compare   p50 {pct(submit_ms, 50):6.1f} ms   p99 {pct(submit_ms, 99):6.1f} ms   n={len(submit_ms)}"
    )
    print(
        f"worst p99: {p99:.1f} ms (target < {TARGET_P99_MS:.0f}: ratio {p99 / TARGET_P99_MS:.2f})"
    )
    print(f"errors: {len(errors)} {sorted(set(errors))[:5]}")
    return errors


def report_cpu(load: Load) -> None:
    """Where the CPU went: each gunicorn process, each program per comparison, the machine."""
    workers = sorted(
        (seconds for name, seconds in load.cpu_spent.items() if name.startswith("gunicorn")),
        reverse=True,
    )
    print(
        "gunicorn processes, share of one core each: "
        + " ".join(f"{100 * seconds / load.elapsed:.0f}%" for seconds in workers)
    )
    spent = {
        **{k: v for k, v in load.cpu_spent.items() if not k.startswith("gunicorn")},
        "gunicorn (app)": sum(workers),
    }
    print(
        "CPU ms per comparison: "
        + ", ".join(
            f"{name} {1000 * seconds / max(load.created, 1):.1f}"
            for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1])
        )
        + f" (machine: {os.cpu_count()} cores)"
    )
    print(f"machine CPU busy during the load: {100 * load.busy:.0f}%")


def report_slowest_second(load: Load) -> None:
    """Comparisons in each second of the run, and what PostgreSQL waited on in the slowest."""
    per_second = [0] * max(int(load.elapsed), 1)
    for lab in load.labelers:
        for t in lab.done_at:
            per_second[min(int(t - load.t_start), len(per_second) - 1)] += 1
    slowest = min(range(len(per_second)), key=per_second.__getitem__)
    print(
        f"comparisons per second of the run: min {per_second[slowest]} (second {slowest}),"
        f" median {statistics.median(per_second):.0f}, max {max(per_second)}"
    )
    in_slowest: dict[str, int] = {}
    samples_in_slowest = 0
    for at, events in load.watcher.timeline:
        if int(at - load.t_start) == slowest:
            samples_in_slowest += 1
            for event in events:
                in_slowest[event] = in_slowest.get(event, 0) + 1
    print(
        f"PostgreSQL in that second ({samples_in_slowest} samples): "
        + ", ".join(
            f"{event} {n}" for event, n in sorted(in_slowest.items(), key=lambda kv: -kv[1])
        )
    )


def report_database(load: Load, server_pid: int) -> None:
    """Autovacuum, WAL, the bench's own stalls, PostgreSQL's waits and the workers' memory."""
    # The statistics collector reports with a delay: read after the run, this still shows
    # what ran during it, give or take a second.
    autovacuum_after = autovacuum_runs()
    before = load.autovacuum_before
    ran = [
        f"{table} (vacuum {after[0] - before.get(table, (0, 0))[0]},"
        f" analyze {after[1] - before.get(table, (0, 0))[1]})"
        for table, after in sorted(autovacuum_after.items())
        if after != before.get(table, (0, 0))
    ]
    print("autovacuum during the run: " + (", ".join(ran) if ran else "none"))
    wal_mib = (wal_position() - load.wal_before) / 2**20
    print(
        f"WAL written: {wal_mib:.0f} MiB ({1024 * wal_mib / max(load.created, 1):.1f} KiB per comparison)"
    )
    watcher = load.watcher
    stalls = [g for g in watcher.gaps_ms if g > 50]
    print(
        f"scheduling gaps over 50 ms in the bench process: {len(stalls)}"
        + (f", longest {max(stalls):.0f} ms" if stalls else "")
    )
    busy_backends = sum(watcher.waits.values()) / max(watcher.samples, 1)
    top = sorted(watcher.waits.items(), key=lambda kv: -kv[1])[:5]
    print(
        f"PostgreSQL backends active per sample: {busy_backends:.2f}; "
        + ", ".join(f"{event} {100 * n / max(watcher.samples, 1):.0f}%" for event, n in top)
    )
    print(
        "gunicorn workers' peak memory (RSS): "
        + " ".join(f"{mib:.0f} MiB" for mib in worker_peak_rss_mib(server_pid))
    )


def over_redundancy() -> int:
    """Pairs that got more judgments than the project's redundancy (2): a wrong result."""
    from django.db.models import Count

    from annotate.models import Comparison

    over = Comparison.objects.values("pair").annotate(n=Count("pk")).filter(n__gt=2).count()
    print(f"stored comparisons: {Comparison.objects.count()} (pairs over redundancy: {over})")
    return over


def main() -> int:
    args = parse_args()
    db_name = f"prefloop_bench_{os.getpid()}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        print(f"labeling_load needs PostgreSQL (BENCH_PG={PG_ADMIN}): {exc}", file=sys.stderr)
        return 2
    admin.execute(f'CREATE DATABASE "{db_name}"')
    database_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db_name
    server = None
    static_root = None
    try:
        t0 = time.perf_counter()
        setup_django(database_url)
        slug = seed(args.pairs, args.labelers)
        print(
            f"seeded {args.pairs:,} pairs and {args.labelers} labelers in {time.perf_counter() - t0:.1f} s"
        )
        static_root = Path(tempfile.mkdtemp(prefix="labeling-load-static-"))
        server, port = start_server(args, database_url, static_root)
        load = run_load(args, port, slug, database_url, server.pid)
        if load is None:
            return 1
        errors = report_speed(args, load)
        report_cpu(load)
        report_slowest_second(load)
        report_database(load, server.pid)
        over = over_redundancy()
        print("\nleasing query plan at full size:\n" + lease_plan(slug))
        # Speed is reported against its target above; a failed request or an over-filled
        # pair is a wrong result.
        return 1 if errors or over else 0
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        if static_root is not None:
            shutil.rmtree(static_root, ignore_errors=True)
        from django.db import connections

        connections.close_all()
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    sys.exit(main())
