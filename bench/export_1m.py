"""Export benchmark: 1,000,000 comparisons exported as TRL JSONL, timed, with the process's
peak memory, against the targets (under 60 s and under 300 MB).

    .venv/bin/python bench/export_1m.py                     # PostgreSQL (127.0.0.1:5432)
    .venv/bin/python bench/export_1m.py --database sqlite   # or both: --database both
    .venv/bin/python bench/export_1m.py --smoke             # seconds: 2,000 comparisons, SQLite

A throwaway database is created and seeded (in a child process, so that the seeding's memory
does not count), then this process exports it in the same way as `manage.py export_dataset`.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
# A database of this run's own: runs (and test sessions) on one server don't collide.
PG_BENCH_NAME = f"pf_export_bench_{os.getpid()}"
PG_BENCH = f"postgres://postgres@127.0.0.1:5432/{PG_BENCH_NAME}"
TARGET_SECONDS = 60
TARGET_MB = 300
PER_PAIR = 4  # judgments of every pair: comparisons / 4 pairs
LABELERS = 4  # default: every pair judged by each
WORDS = (
    "the a model answer question reward policy data token train human prefer response "
    "helpful honest clear short long explain because result value python code list"
).split()


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # A benchmark is a development run: the development key and settings.
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()


def create_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.sqlite3'}"
    import psycopg

    with psycopg.connect(PG_ADMIN.replace("postgres://", "postgresql://"), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_NAME}"')
        c.execute(f'CREATE DATABASE "{PG_BENCH_NAME}"')
    return PG_BENCH


def drop_database(kind: str) -> None:
    if kind == "postgres":
        import psycopg

        url = PG_ADMIN.replace("postgres://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_NAME}" WITH (FORCE)')


# --- seeding (child process) ----------------------------------------------------------------


def _writer(model, columns: list[str]):
    """(table, prepare, write_rows): rows given as {column: value} for `columns`; every other
    column takes its field default, prepared for the database once (a callable default, such
    as a random key, is called per row)."""
    from django.db import connection
    from django.db.models import DateTimeField, JSONField
    from django.utils import timezone

    now = timezone.now()
    fields = [f for f in model._meta.concrete_fields]
    defaults = {}
    per_row = {}
    for f in fields:
        if f.column in columns:
            continue
        if f.has_default() and callable(f.default) and f.default not in (list, dict):
            per_row[f.column] = f
            continue
        value = now if isinstance(f, DateTimeField) else f.get_default()
        defaults[f.column] = f.get_db_prep_save(value, connection=connection)
    convert = {
        f.column: f
        for f in fields
        if f.column in columns and isinstance(f, (JSONField, DateTimeField))
    }
    names = [f.column for f in fields]
    quoted = ", ".join(connection.ops.quote_name(n) for n in names)  # "left" is a keyword

    def prepare(values: dict) -> tuple:
        return tuple(
            (
                convert[c].get_db_prep_save(values[c], connection=connection)
                if c in convert
                else values[c]
            )
            if c in values
            else per_row[c].get_db_prep_save(per_row[c].get_default(), connection=connection)
            if c in per_row
            else defaults[c]
            for c in names
        )

    table = model._meta.db_table

    def write_rows(rows) -> int:
        n = 0
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                raw = cursor.cursor
                with raw.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        n += 1
            else:
                sql = f"INSERT INTO {table} ({quoted}) VALUES ({', '.join('%s' for _ in names)})"
                batch = []
                for row in rows:
                    batch.append(row)
                    if len(batch) == 10_000:
                        cursor.executemany(sql, batch)
                        n += len(batch)
                        batch = []
                if batch:
                    cursor.executemany(sql, batch)
                    n += len(batch)
        return n

    return prepare, write_rows


def seed(comparisons: int, labelers: int = LABELERS) -> None:
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from annotate.hashing import content_hash, user_message
    from annotate.models import Comparison, Membership, Pair, Project, Prompt, Response

    call_command("migrate", verbosity=0)
    rng = random.Random(0)
    pairs = comparisons // PER_PAIR
    project = Project.objects.create(name="Bench", slug="bench", ask_strength=True)
    users = [get_user_model().objects.create(username=f"bench{i}") for i in range(labelers)]
    Membership.objects.bulk_create(Membership(project=project, user=u) for u in users)
    start = timezone.now() - timedelta(days=30)

    with transaction.atomic():
        prep, write = _writer(Prompt, ["id", "project_id", "messages", "content_hash"])

        def prompts():
            for i in range(1, pairs + 1):
                messages = user_message(f"{text(rng, 12)} ({i})")
                yield prep(
                    {
                        "id": i,
                        "project_id": project.id,
                        "messages": messages,
                        "content_hash": content_hash(messages),
                    }
                )

        write(prompts())
        prep, write = _writer(Response, ["id", "prompt_id", "text", "content_hash"])

        def responses():
            for i in range(1, 2 * pairs + 1):
                body = f"{text(rng, rng.randint(20, 60))} ({i})"
                yield prep(
                    {
                        "id": i,
                        "prompt_id": (i + 1) // 2,
                        "text": body,
                        "content_hash": content_hash(body),
                    }
                )

        write(responses())
        prep, write = _writer(
            Pair, ["id", "project_id", "prompt_id", "response_a_id", "response_b_id", "is_open"]
        )
        write(
            prep(
                {
                    "id": i,
                    "project_id": project.id,
                    "prompt_id": i,
                    "response_a_id": 2 * i - 1,
                    "response_b_id": 2 * i,
                    "is_open": False,
                }
            )
            for i in range(1, pairs + 1)
        )
        prep, write = _writer(
            Comparison,
            [
                "id",
                "pair_id",
                "project_id",
                "labeler_id",
                "choice",
                "strength",
                "left",
                "time_spent_ms",
                "created_at",
            ],
        )
        choices = ["a"] * 45 + ["b"] * 40 + ["tie"] * 10 + ["both_bad"] * 5

        def judgments():
            n = 0
            for pair in range(1, pairs + 1):
                # PER_PAIR labelers in rotation (all of them when there are PER_PAIR).
                for j in range(PER_PAIR):
                    user = users[(pair * PER_PAIR + j) % len(users)]
                    n += 1
                    choice = rng.choice(choices)
                    yield prep(
                        {
                            "id": n,
                            "pair_id": pair,
                            "project_id": project.id,
                            "labeler_id": user.id,
                            "choice": choice,
                            "strength": rng.randint(1, 4) if choice in ("a", "b") else None,
                            "left": rng.choice("ab"),
                            "time_spent_ms": rng.randint(2000, 60000),
                            "created_at": start + timedelta(seconds=n),
                        }
                    )

        written = write(judgments())
    Project.objects.filter(pk=project.pk).update(pair_count=pairs, comparison_count=written)
    if os.environ["DATABASE_URL"].startswith("postgres"):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


# --- export (this process) ------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_export(fmt: str, out: Path) -> dict:
    from annotate.models import Project
    from annotate.services.exports import ExportOptions, dataset_export

    project = Project.objects.get(slug="bench")
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append(rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    before = rss_mb()
    sampler.start()
    started = time.perf_counter()
    manifest = dataset_export(project=project, options=ExportOptions(format=fmt), out=out)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {"manifest": manifest, "seconds": seconds, "rss_before": before, "samples": samples}


def report(kind: str, fmt: str, result: dict, out: Path) -> None:
    counts = result["manifest"]["counts"]
    samples = result["samples"] or [rss_mb()]
    quarter = samples[len(samples) // 4 :]  # after the first quarter: is memory flat?
    peak = peak_mb()
    print(
        f"\n[{kind}] {fmt}: {counts['comparisons']:,} comparisons -> {counts['rows']:,} rows, "
        f"{out.stat().st_size / 2**20:,.0f} MB file"
    )
    print(
        f"  time        {result['seconds']:6.1f} s   target {TARGET_SECONDS} s   "
        f"ratio {result['seconds'] / TARGET_SECONDS:.2f}"
    )
    print(
        f"  peak RSS    {peak:6.0f} MB  target {TARGET_MB} MB  ratio {peak / TARGET_MB:.2f}  "
        "(ru_maxrss of the whole process)"
    )
    print(
        f"  RSS before  {result['rss_before']:6.0f} MB; during the export "
        f"{min(samples):.0f}-{max(samples):.0f} MB, after its first quarter "
        f"{min(quarter):.0f}-{max(quarter):.0f} MB"
    )
    print(f"  throughput  {counts['comparisons'] / result['seconds']:,.0f} comparisons/s")


def time_repeat_checks(rounds: int) -> list[float]:
    """Milliseconds of each of `rounds` repeat-check draws (annotate.services.checks), the
    labelers taken in turn; each draw's lease is rolled back, so every draw sees the same
    data."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from annotate.models import Project
    from annotate.services.checks import repeat_lease

    project = Project.objects.get(slug="bench")
    users = list(get_user_model().objects.filter(username__startswith="bench").order_by("pk"))
    rng = random.Random(1)
    times = []
    for n in range(rounds + 1):
        with transaction.atomic():
            started = time.perf_counter()
            lease = repeat_lease(
                project=project, labeler=users[n % len(users)], rng=rng, now=timezone.now()
            )
            elapsed = (time.perf_counter() - started) * 1000
            assert lease is not None, "no repeat found"
            transaction.set_rollback(True)
        if n:  # the first draw warms the connection and the caches
            times.append(elapsed)
    return times


def report_repeat_checks(kind: str, times: list[float], comparisons: int, labelers: int) -> None:
    times = sorted(times)
    print(
        f"\n[{kind}] repeat checks: {len(times)} draws, {labelers} labelers, "
        f"{comparisons // labelers:,} judgments each"
    )
    print(
        f"  per draw    mean {sum(times) / len(times):.2f} ms, median {times[len(times) // 2]:.2f}"
        f" ms, range {times[0]:.2f}-{times[-1]:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2,000 comparisons on SQLite")
    parser.add_argument("--comparisons", type=int, default=None, help="default 1,000,000")
    parser.add_argument("--database", choices=("postgres", "sqlite", "both"), default=None)
    parser.add_argument("--format", default="trl", help="Also try raw, parquet, ...")
    parser.add_argument(
        "--labelers", type=int, default=LABELERS, help=f"each pair judged by {PER_PAIR} of them"
    )
    parser.add_argument(
        "--repeat-checks", type=int, default=0, help="also time this many repeat-check draws"
    )
    parser.add_argument("--seed-only", help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args()
    args.comparisons = args.comparisons or (2000 if args.smoke else 1_000_000)
    args.database = args.database or ("sqlite" if args.smoke else "postgres")

    if args.seed_only:
        setup_django(args.seed_only)
        started = time.perf_counter()
        seed(args.comparisons, args.labelers)
        print(f"  seeded {args.comparisons:,} comparisons in {time.perf_counter() - started:.0f} s")
        return

    kinds = ("postgres", "sqlite") if args.database == "both" else (args.database,)
    if len(kinds) > 1:
        # One Django process holds one database: run each kind in its own process.
        for kind in kinds:
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--database",
                    kind,
                    "--comparisons",
                    str(args.comparisons),
                    "--format",
                    args.format,
                    "--labelers",
                    str(args.labelers),
                    "--repeat-checks",
                    str(args.repeat_checks),
                ],
                check=True,
            )
        return
    kind = kinds[0]
    with tempfile.TemporaryDirectory(prefix="pf-export-bench-") as tmp:
        workdir = Path(tmp)
        url = create_database(kind, workdir)
        try:
            print(f"[{kind}] seeding {args.comparisons:,} comparisons ...", flush=True)
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--seed-only",
                    url,
                    "--comparisons",
                    str(args.comparisons),
                    "--labelers",
                    str(args.labelers),
                ],
                check=True,
            )
            setup_django(url)
            out = workdir / f"bench-{args.format}.jsonl"
            result = run_export(args.format, out)
            lines = sum(1 for _ in open(out, "rb")) if out.suffix == ".jsonl" else None
            assert lines in (None, result["manifest"]["counts"]["rows"]), "row count mismatch"
            report(kind, args.format, result, out)
            if args.repeat_checks:
                times = time_repeat_checks(args.repeat_checks)
                report_repeat_checks(kind, times, args.comparisons, args.labelers)
        finally:
            if "django" in sys.modules and os.environ.get("DATABASE_URL") == url:
                from django.db import connections

                connections.close_all()
            drop_database(kind)


if __name__ == "__main__":
    main()
