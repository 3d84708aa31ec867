"""What judge-first costs a lease: the median (and p99) time of pair_lease_next on PostgreSQL,
without judge-first, with judge-first's rule as it is (the judges' verdict kept on the Pair,
annotate.selectors.judge_first) and with the rule it replaced (an EXISTS over each walked pair's
comparisons, kept here as "before"), on the same data in one sitting.

    .venv/bin/python bench/judge_first_lease.py            # 20,000 pairs, 4 labelers
    .venv/bin/python bench/judge_first_lease.py --smoke    # seconds: 600 pairs, 2 labelers

A throwaway PostgreSQL database (dropped at the end; BENCH_PG, default the local server) gets
one project of N pairs (redundancy 2) and two AI judges that read every pair: 70% of the pairs
settled (both sure of the same side, the reward model silent or agreeing), the rest not (the
judges split, one unsure, a tie, the model leaning the other way), spread through the queue.
Labelers take turns of 60 leases, judging each pair leased; each rule starts from the same
state (people's judgments and leases removed, tables vacuumed). Then every pair is settled
and each labeler asks again: the lease that finds nothing left for people walks the whole
queue. Also timed: recounting every pair's verdict, and a judge's exclusion (which recounts
its pairs). Exits 2 when it finds no PostgreSQL; the target is p99 < 200 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.labeling_load import PG_ADMIN, TARGET_P99_MS, seed, setup_django  # noqa: E402

SETTLED_SHARE = 0.7
RULES = ("off", "before", "after")  # no judge-first; the EXISTS rule; the column rule


def old_settled_sql(quote_name, pair: str = "p") -> str:
    """Judge-first's rule before the verdict was kept on the Pair (its text at c0b7f02)."""
    from annotate.models import Comparison, Membership

    comparisons = quote_name(Comparison._meta.db_table)
    memberships = quote_name(Membership._meta.db_table)
    return f"""EXISTS (SELECT 1 FROM {comparisons} j
                   WHERE j.pair_id = {pair}.id AND j.source = 'ai_judge' AND NOT j.is_repeat
                     AND NOT EXISTS (SELECT 1 FROM {memberships} m
                                     WHERE m.project_id = {pair}.project_id
                                       AND m.user_id = j.labeler_id AND m.excluded)
                   GROUP BY j.pair_id
                   HAVING MIN(j.choice) = MAX(j.choice) AND MIN(j.choice) IN ('a', 'b')
                      AND MIN(COALESCE(j.p_chosen, 0)) >= %s
                      AND ({pair}.model_p_a IS NULL OR {pair}.model_p_a = 0.5
                           OR (MIN(j.choice) = 'a' AND {pair}.model_p_a > 0.5)
                           OR (MIN(j.choice) = 'b' AND {pair}.model_p_a < 0.5)))"""


def use_rule(rule: str, project) -> None:
    """Point the lease's candidate read at a rule. "before" swaps the old text into the
    statement builder (a bench-only patch; the app has one rule)."""
    from annotate.models import Project
    from annotate.selectors import judge_first
    from annotate.services import _queue_sql

    _queue_sql.settled_sql = old_settled_sql if rule == "before" else judge_first.settled_sql
    _queue_sql._candidate_sql.cache_clear()
    Project.objects.filter(pk=project.pk).update(judge_first=rule != "off")
    project.refresh_from_db()


def add_judges(project, rng: random.Random) -> set[int]:
    """Two judges' comparisons of every pair; returns the ids of the pairs they settle."""
    from django.contrib.auth import get_user_model

    from annotate.models import Comparison, Judge, Membership, Pair

    users = []
    for name in ("one", "two"):
        user = get_user_model().objects.create(username=f"judge:bench:{name}")
        Membership.objects.create(project=project, user=user)
        Judge.objects.create(
            project=project, user=user, name=name, base_url="http://sim", model=name
        )
        users.append(user)
    rows, settled, model = [], set(), []
    for pair_id in Pair.objects.filter(project=project).order_by("pk").values_list("pk", flat=True):
        side, other = rng.sample("ab", 2)
        says = [(side, rng.uniform(0.75, 1.0)), (side, rng.uniform(0.75, 1.0))]
        model_p_a = rng.choice((None, 0.5, 0.9 if side == "a" else 0.1))
        if rng.random() < SETTLED_SHARE:
            settled.add(pair_id)
        else:
            unsettle = rng.randrange(4)
            if unsettle == 0:
                says[1] = (other, says[1][1])  # the judges split
            elif unsettle == 1:
                says[1] = (side, 0.55)  # one is unsure
            elif unsettle == 2:
                says = [("tie", 0.9), ("tie", 0.9)]
            else:
                model_p_a = 0.1 if side == "a" else 0.9  # the model leans the other way
        model.append(Pair(pk=pair_id, model_p_a=model_p_a))
        for user, (choice, p) in zip(users, says, strict=True):
            rows.append(
                Comparison(
                    pair_id=pair_id,
                    project=project,
                    labeler=user,
                    source=Comparison.Source.AI_JUDGE,
                    choice=choice,
                    p_chosen=round(p, 4),
                )
            )
    Comparison.objects.bulk_create(rows, batch_size=5000)
    Pair.objects.bulk_update(model, ["model_p_a"], batch_size=5000)
    return settled


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, out


def reset_people(project) -> None:
    """Back to no people's judgments and no leases, the tables vacuumed and analyzed."""
    from django.db import connection

    from annotate.models import Comparison, Lease, Pair

    Comparison.objects.filter(project=project).exclude(source=Comparison.Source.AI_JUDGE).delete()
    Lease.objects.all().delete()
    Pair.objects.filter(project=project).update(human_count=0, is_open=True)
    with connection.cursor() as cursor:
        for model in (Pair, Comparison, Lease):
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def label_in_turns(project, labelers, rounds: int, turn: int) -> list[float]:
    """Each labeler in turn leases and judges `turn` pairs, `rounds` times; the lease times."""
    from annotate.models import Choice
    from annotate.services.labeling import comparison_create, pair_lease_next

    times = []
    for _ in range(rounds):
        for labeler in labelers:
            for _ in range(turn):
                ms, lease = timed(pair_lease_next, project=project, labeler=labeler)
                if lease is None:
                    break
                times.append(ms)
                comparison_create(pair=lease.pair, labeler=labeler, choice=Choice.A)
    return times


def nothing_left(project, labelers, asks: int) -> list[float]:
    """Leases that find nothing left for people (every open pair settled)."""
    from annotate.services.labeling import pair_lease_next

    times = []
    for _ in range(asks):
        for labeler in labelers:
            ms, lease = timed(pair_lease_next, project=project, labeler=labeler)
            assert lease is None, "a settled pair was served"
            times.append(ms)
    return times


def settle_everything(project) -> None:
    from annotate.models import Comparison, Pair
    from annotate.services.judges_verdict import judges_verdict_refresh

    Comparison.objects.filter(project=project, source=Comparison.Source.AI_JUDGE).update(
        choice="a", p_chosen=0.9
    )
    Pair.objects.filter(project=project).update(model_p_a=None)
    judges_verdict_refresh(pair_ids=Pair.objects.filter(project=project).values("pk"))


def plan_ms(project, labeler) -> str:
    """The candidate read's execution time as EXPLAIN ANALYZE reports it, and its scan."""
    from django.db import transaction

    from annotate.services.labeling import lease_candidate_plan

    with transaction.atomic():
        plan = lease_candidate_plan(
            project=project, labeler=labeler, random_order=False, analyze=True
        )
        transaction.set_rollback(True)
    lines = plan.splitlines()
    scan = next((line.strip() for line in lines if "Index Scan" in line), "?")
    removed = next((line.strip() for line in lines if "Rows Removed by Filter" in line), "")
    total = next((line.strip() for line in lines if line.startswith("Execution Time")), "?")
    return f"{total}; {scan}; {removed}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(case: str, rule: str, times: list[float]) -> str:
    return (
        f"{case:<30} {rule:<7} {len(times):>6} {statistics.median(times):>10.2f} "
        f"{pct(times, 0.99):>9.2f}"
    )


def recount_figures(project) -> None:
    """A full recount, and a judge's exclusion and inclusion (each recounts its pairs)."""
    from django.contrib.auth import get_user_model

    from annotate.models import Pair
    from annotate.services.judges_verdict import judges_verdict_refresh
    from annotate.services.review import membership_exclude, membership_include

    pairs = Pair.objects.filter(project=project)
    Pair.objects.filter(project=project).update(judges_choice="", judges_min_p=None)
    ms, changed = timed(judges_verdict_refresh, pair_ids=pairs.values("pk"))
    print(f"recount of every pair's verdict: {ms:.0f} ms ({changed:,} changed)")
    judge = get_user_model().objects.get(username="judge:bench:one")
    ms, _ = timed(membership_exclude, project=project, user=judge, reason="bench")
    print(f"a judge excluded (its {pairs.count():,} pairs recounted): {ms:.0f} ms")
    ms, _ = timed(membership_include, project=project, user=judge)
    print(f"the judge included again: {ms:.0f} ms")


def run(args: argparse.Namespace) -> int:
    from django.contrib.auth import get_user_model

    from annotate.models import Project

    t0 = time.perf_counter()
    slug = seed(args.pairs, args.labelers)
    project = Project.objects.get(slug=slug)
    settled = add_judges(project, random.Random(args.seed))
    from annotate.models import Pair
    from annotate.services.judges_verdict import judges_verdict_refresh

    judges_verdict_refresh(pair_ids=Pair.objects.filter(project=project).values("pk"))
    labelers = list(get_user_model().objects.filter(username__startswith="bench").order_by("pk"))
    print(
        f"seeded {args.pairs:,} pairs ({len(settled):,} settled by two judges), "
        f"{len(labelers)} labelers in {time.perf_counter() - t0:.1f} s"
    )
    print(f"\n{'case':<30} {'rule':<7} {'leases':>6} {'median ms':>10} {'p99 ms':>9}")
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.reps):
        for rule in RULES:
            reset_people(project)
            use_rule(rule, project)
            times = label_in_turns(project, labelers, args.rounds, args.turn)
            results.setdefault(("leases, 70% settled", rule), []).extend(times)
    for (case, rule), times in results.items():
        print(line(case, rule, times))
    reset_people(project)
    settle_everything(project)
    for rule in RULES[1:]:
        use_rule(rule, project)
        times = nothing_left(project, labelers, args.asks)
        results[("nothing left (all settled)", rule)] = times
        print(line("nothing left (all settled)", rule, times))
        print(f"    plan: {plan_ms(project, labelers[0])}")
    case = "leases, 70% settled"
    before, after = (statistics.median(results[(case, r)]) for r in ("before", "after"))
    empty = [statistics.median(results[("nothing left (all settled)", r)]) for r in RULES[1:]]
    print(
        f"\nmedian lease, before / after: {before:.2f} / {after:.2f} ms ({before / after:.1f}x); "
        f"nothing left: {empty[0]:.2f} / {empty[1]:.2f} ms ({empty[0] / empty[1]:.1f}x)"
    )
    worst = max(pct(results[(c, "after")], 0.99) for c, r in results if r == "after")
    print(f"p99 with the column rule {worst:.2f} ms: {worst / TARGET_P99_MS:.3f} of the target")
    recount_figures(project)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="600 pairs, 2 labelers, short turns")
    parser.add_argument("--pairs", type=int, default=None, help="default 20,000")
    parser.add_argument("--labelers", type=int, default=None, help="default 4")
    parser.add_argument("--turn", type=int, default=None, help="leases per turn (default 60)")
    parser.add_argument("--rounds", type=int, default=None, help="turns per labeler (default 2)")
    parser.add_argument("--reps", type=int, default=None, help="passes over the rules (default 2)")
    parser.add_argument("--asks", type=int, default=None, help="empty leases a labeler (25)")
    parser.add_argument("--seed", type=int, default=27)
    args = parser.parse_args()
    smoke = args.smoke
    args.pairs = args.pairs or (600 if smoke else 20_000)
    args.labelers = args.labelers or (2 if smoke else 4)
    args.turn = args.turn or (10 if smoke else 60)
    args.rounds = args.rounds or (1 if smoke else 2)
    args.reps = args.reps or (1 if smoke else 2)
    args.asks = args.asks or (3 if smoke else 25)
    return args


def main() -> int:
    args = parse_args()
    db_name = f"prefloop_bench_jf_{os.getpid()}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        print(f"judge_first_lease needs PostgreSQL (BENCH_PG={PG_ADMIN}): {exc}", file=sys.stderr)
        return 2
    admin.execute(f'CREATE DATABASE "{db_name}"')
    try:
        setup_django(PG_ADMIN.rsplit("/", 1)[0] + "/" + db_name)
        return run(args)
    finally:
        from django.db import connections

        connections.close_all()
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    sys.exit(main())
