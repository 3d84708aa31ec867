"""Do AI judges help the crowd model? The synthetic crowd of bench/label_noise.py labels a
pool through the real services; two simulated AI judges read every pair in both orders; the
reward model is trained on the people alone, on people and judges under each aggregation,
and with judge-first labeling at half the people's labels (beside the same half of their
labels without judges), and scored against the truth.

    .venv/bin/python bench/ai_judges.py            # 1,500 pairs x 3 votes, 3 seeds
    .venv/bin/python bench/ai_judges.py --quick    # 600 pairs, 3 seeds
    .venv/bin/python bench/ai_judges.py --smoke    # tiny data, one seed: a few minutes

The world, the crowd (10 honest labelers and 8 careless ones), the tiny BERT, the training
through run_create / run_execute and the test pairs are label_noise.py's (imported from it).
The judges, each a Judge with its own labeler account:
- good: right on 80% of its readings, with a 10% position bias (60% of its readings pick the
  response shown first): on a fifth of its readings it takes the first-shown response, on
  the others it says its opinion of the pair, right on 87.5% of pairs;
- bad: right on 55% of its readings, no position bias.
A judge holds one opinion of a pair (an LLM is mostly self-consistent), so its two readings
differ only where the position bias overrides one. The readings become one comparison by the
judging service's own rule (annotate.judging.verdict.readings_combine: no logprobs, so the
same side twice is that side at P = 1, two sides a tie at 0.5), with one JudgeVerdict per
reading, as a judging job writes them.

Variants, each trained once per aggregation (majority, Dawid-Skene, GLAD, MACE) on the same
comparisons: people only (judges_in_training off); people and both judges; people and the
bad judge only (the good one excluded, as staff would). Every variant trains from the
backbone: a run warm-starts from the project's active model, which here would be whichever
variant was promoted before it, and early stopping then keeps it near that model
(`--warm-chain` trains that way, as the bench did until 2026-12-07; see bench/RESULTS.md). Judge-first: a second project whose
judges read every pair first, then people label with `judge_first` on until they have given
half the people's labels of the full run (or nothing is left for them), trained under
`--judge-first-aggregation`, as is a third project labelled by people alone with the same
budget, and the ceiling: a project labelled by the truth itself (one right label a pair).
Label accuracy against the truth, and the share of labels choosing the longer
response (the truth: about half; the crowd's always-longer labelers push it up), are printed
beside each model. Targets: people and judges under the best reliability model at
least 2 points above people only (under the best aggregation for people alone), and never
below people only when only the bad judge is added.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.label_noise import (  # noqa: E402 - after the path is set
    AGGREGATIONS,
    REDUNDANCY,
    TRAINING,
    SyntheticPair,
    crowd,
    label_accuracy,
    label_pool,
    make_backbone,
    says_a,
    seed_project,
    setup_django,
    summary,
    train_ours,
    world,
)

MODELS = ("dawid_skene", "glad", "mace")
TARGET_POINTS = 2.0
# The share of the full run's people labels that judge-first may spend.
JUDGE_FIRST_BUDGET = 0.5


@dataclass(frozen=True)
class SimulatedJudge:
    name: str
    accuracy: float  # of a reading, position bias included
    first_bias: float  # its readings' share of the first-shown response, beyond 50%

    @property
    def override(self) -> float:
        """The share of readings that take the first-shown response whatever the pair."""
        return 2 * self.first_bias

    @property
    def opinion(self) -> float:
        """P(its opinion of a pair is right): accuracy = override / 2 + (1 - override) * it."""
        return (self.accuracy - self.override / 2) / (1 - self.override)


JUDGES = (SimulatedJudge("good", 0.80, 0.10), SimulatedJudge("bad", 0.55, 0.0))


def judge_readings(
    judge: SimulatedJudge, pair: SyntheticPair, rng: random.Random
) -> dict[str, str]:
    """The judge's two readings of a pair in the pair's terms, by order (ab: A shown first)."""
    right = rng.random() < judge.opinion
    opinion = "a" if pair.a_better == right else "b"
    out = {}
    for order, first in (("ab", "a"), ("ba", "b")):
        out[order] = first if rng.random() < judge.override else opinion
    return out


def judges_read(project, pool: list[SyntheticPair], seed: int) -> dict[str, dict]:
    """Every simulated judge reads every pair of the project in both orders: a Judge with its
    own member account, its JudgeVerdicts and one Comparison per pair. Returns each judge's
    measured reading accuracy and first-shown rate."""
    from django.contrib.auth import get_user_model

    from annotate.judging.verdict import readings_combine
    from annotate.models import Comparison, Judge, JudgeVerdict, Membership, Pair
    from annotate.services.judges_verdict import judges_verdict_refresh

    rng = random.Random(seed * 1000 + 17)
    pair_ids = list(
        Pair.objects.filter(project=project).order_by("id").values_list("id", flat=True)
    )
    measured = {}
    for sim in JUDGES:
        user = get_user_model().objects.create(username=f"{project.slug}-judge-{sim.name}")
        user.set_unusable_password()
        user.save(update_fields=["password"])
        Membership.objects.create(project=project, user=user)
        judge = Judge.objects.create(
            project=project, user=user, name=sim.name, base_url="http://sim", model=sim.name
        )
        verdicts, comparisons, right, first = [], [], 0, 0
        for pair_id in pair_ids:
            pair = pool[project.bench_index[pair_id]]
            said = judge_readings(sim, pair, rng)
            for order, choice in said.items():
                verdicts.append(
                    JudgeVerdict(judge=judge, pair_id=pair_id, order=order, choice=choice)
                )
                right += (choice == "a") == pair.a_better
                first += choice == order[0]
            combined = readings_combine([(said["ab"], None), (said["ba"], None)])
            comparisons.append(
                Comparison(
                    pair_id=pair_id,
                    project=project,
                    labeler=user,
                    source=Comparison.Source.AI_JUDGE,
                    choice=combined.choice,
                    p_chosen=combined.p_chosen,
                )
            )
        JudgeVerdict.objects.bulk_create(verdicts, batch_size=2000)
        Comparison.objects.bulk_create(comparisons, batch_size=2000)
        # Bulk-written, as judge_comparison_make would not: the verdicts judge-first reads.
        judges_verdict_refresh(pair_ids=pair_ids)
        readings = 2 * len(pair_ids)
        measured[sim.name] = {
            "user": user,
            "reading_accuracy": right / readings,
            "first_rate": first / readings,
        }
    return measured


def label_with_budget(project, pool, people, seed: int, budget: int) -> int:
    """label_noise.label_pool's rounds, stopped once the people gave `budget` labels or
    nothing is left for them; the labels given."""
    from annotate.models import Choice
    from annotate.services.labeling import comparison_create, pair_lease_next

    rng = random.Random(seed)
    active, given = list(people), 0
    while active and given < budget:
        rng.shuffle(active)
        for person in list(active):
            if given >= budget:
                break
            user, kind, error = person
            lease = pair_lease_next(project=project, labeler=user, rng=rng)
            if lease is None:
                active.remove(person)
                continue
            pair = pool[project.bench_index[lease.pair_id]]
            vote = says_a(kind, error, pair, lease.left == "a", rng)
            comparison_create(pair=lease.pair, labeler=user, choice=Choice.A if vote else Choice.B)
            given += 1
    return given


def set_judges(project, *, in_training: bool, exclude=None, include=None) -> None:
    from annotate.models import Project
    from annotate.services.review import membership_exclude, membership_include

    Project.objects.filter(pk=project.pk).update(judges_in_training=in_training)
    project.refresh_from_db()
    if exclude is not None:
        membership_exclude(project=project, user=exclude, reason="bench: the bad judge alone")
    if include is not None:
        membership_include(project=project, user=include)


def judge_figures(project) -> dict[str, dict]:
    """The quality page's figures of each judge under the project's current settings."""
    from annotate.selectors.quality import quality_figures

    figures, _ = quality_figures(project=project, n_boot=200)
    return {row["name"]: row for row in figures["judges"]["rows"]}


@dataclass
class Tally:
    scores: dict[str, list[float]] = field(default_factory=dict)
    labels: dict[str, list[float]] = field(default_factory=dict)  # label accuracy vs truth
    longer: dict[str, list[float]] = field(default_factory=dict)  # labels choosing the longer
    facts: dict[str, list[float]] = field(default_factory=dict)
    # Each variant trains from the backbone (train_ours' cold start); --warm-chain lets each
    # start from the model promoted before it instead, as the bench did before 2026-12-07.
    cold: bool = True

    def add(self, table: dict[str, list[float]], name: str, value: float) -> None:
        table.setdefault(name, []).append(value)


@dataclass(frozen=True)
class Sizes:
    n_pool: int
    n_test: int
    seeds: int
    epochs: int


def variant(project, pool, test, tally, line, name: str, aggregation: str, seed: int) -> None:
    acc = train_ours(project, test, aggregation, {"seed": seed}, cold=tally.cold)
    labels, longer = label_accuracy(project, pool)
    key = f"{name}, {aggregation}"
    tally.add(tally.scores, key, acc)
    tally.add(tally.labels, key, labels)
    tally.add(tally.longer, key, longer)
    line.append(f"{key} {acc:.4f} (labels {labels:.3f})")


def seeded_project(slug: str, pool, backbone: str, sizes: Sizes, seed: int):
    """label_noise.seed_project with the pairs' random keys drawn from the seed: the random
    queue's order, and so who labels what, is the same in every run of a seed."""
    from annotate.models import random_keys_seeded

    with random_keys_seeded(seed):
        return seed_project(slug, pool, backbone, REDUNDANCY, sizes.epochs)


def run_seed(seed: int, tally: Tally, sizes: Sizes, backbone: str, first_aggregation: str) -> None:
    tick = time.perf_counter()
    pool, _single, test = world(seed, sizes.n_pool, 0, sizes.n_test)
    project = seeded_project(f"judged-{seed}", pool, backbone, sizes, seed)
    people = crowd(project, seed)
    label_pool(project, pool, people, seed)
    from annotate.models import Comparison

    full_labels = Comparison.objects.filter(project=project, source="human").count()
    judges = judges_read(project, pool, seed)
    for name, measured in judges.items():
        tally.add(tally.facts, f"{name} judge: reading accuracy", measured["reading_accuracy"])
        tally.add(tally.facts, f"{name} judge: first-shown rate", measured["first_rate"])
    line = [f"seed {seed}:"]
    set_judges(project, in_training=False)
    for aggregation in AGGREGATIONS:
        variant(project, pool, test, tally, line, "people only", aggregation, seed)
    set_judges(project, in_training=True)
    for aggregation in AGGREGATIONS:
        variant(project, pool, test, tally, line, "people + both judges", aggregation, seed)
        if aggregation in MODELS:
            figures = judge_figures(project)
            for name in ("good", "bad"):
                tally.add(
                    tally.facts,
                    f"{name} judge: reliability ({aggregation})",
                    figures[name]["reliability"],
                )
    for name in ("good", "bad"):
        row = judge_figures(project)[name]
        tally.add(
            tally.facts,
            f"{name} judge: agreement with people's majority",
            row["agreement_with_humans"],
        )
        tally.add(
            tally.facts, f"{name} judge: same answer in both orders", row["order_consistency"]
        )
    set_judges(project, in_training=True, exclude=judges["good"]["user"])
    for aggregation in AGGREGATIONS:
        variant(project, pool, test, tally, line, "people + bad judge", aggregation, seed)

    # Judge-first: the judges read everything, then people label what they did not settle.
    first = seeded_project(f"judge-first-{seed}", pool, backbone, sizes, seed)
    first_people = crowd(first, seed)
    judges_read(first, pool, seed)
    from django.contrib.auth import get_user_model

    from annotate.models import Membership, Project

    Project.objects.filter(pk=first.pk).update(judge_first=True)
    first.refresh_from_db()
    budget = int(JUDGE_FIRST_BUDGET * full_labels)
    given = label_with_budget(first, pool, first_people, seed, budget)
    tally.add(
        tally.facts,
        "judge-first: people's labels given, share of the full run",
        given / full_labels,
    )
    variant(first, pool, test, tally, line, "judge-first, half the people", first_aggregation, seed)
    # The same half of the people's labels without judges, for comparison.
    half = seeded_project(f"half-{seed}", pool, backbone, sizes, seed)
    label_with_budget(half, pool, crowd(half, seed), seed, budget)
    variant(half, pool, test, tally, line, "people only, half of them", first_aggregation, seed)
    # The ceiling: the truth itself, one right label a pair, on the same pool.
    truth = seeded_project(f"truth-{seed}", pool, backbone, sizes, seed)
    Project.objects.filter(pk=truth.pk).update(redundancy=1)
    truth.refresh_from_db()
    oracle = get_user_model().objects.create(username=f"truth-{seed}")
    Membership.objects.create(project=truth, user=oracle)
    label_with_budget(truth, pool, [(oracle, "honest", 0.0)], seed, len(pool))
    variant(truth, pool, test, tally, line, "the truth (ceiling)", "majority", seed)
    line.append(f"({given} of {full_labels} people labels; {time.perf_counter() - tick:.0f} s)")
    print("  ".join(line), flush=True)


def report(tally: Tally, sizes: Sizes, started: float, first_aggregation: str) -> None:
    print(
        f"\n{sizes.n_pool} pairs x {REDUNDANCY} people votes and 2 judges x 2 readings; "
        f"{sizes.seeds} seed(s); clean test accuracy on {sizes.n_test} pairs "
        "(mean, range over seeds)"
    )
    for name, values in tally.facts.items():
        print(f"  {name:<58} {statistics.mean(values):.3f}")
    print(f"  {'variant, aggregation':<44} {'test accuracy':<30} labels right, longer")
    for name, values in tally.scores.items():
        labels, longer = statistics.mean(tally.labels[name]), statistics.mean(tally.longer[name])
        print(f"  {name:<44} {summary(values):<30} {labels:.3f}  {longer:.3f}")
    mean = {k: statistics.mean(v) for k, v in tally.scores.items()}
    people = max(AGGREGATIONS, key=lambda a: mean[f"people only, {a}"])
    people_best = mean[f"people only, {people}"]
    best = max(MODELS, key=lambda a: mean[f"people + both judges, {a}"])
    gain = 100 * (mean[f"people + both judges, {best}"] - people_best)
    bad_worst = min(
        MODELS, key=lambda a: mean[f"people + bad judge, {a}"] - mean[f"people only, {a}"]
    )
    bad_vs_same = {
        a: 100 * (mean[f"people + bad judge, {a}"] - mean[f"people only, {a}"]) for a in MODELS
    }
    bad_vs_best = 100 * (max(mean[f"people + bad judge, {a}"] for a in MODELS) - people_best)
    first = 100 * (mean[f"judge-first, half the people, {first_aggregation}"] - people_best)
    half = 100 * (
        mean[f"judge-first, half the people, {first_aggregation}"]
        - mean[f"people only, half of them, {first_aggregation}"]
    )
    meets_gain = gain >= TARGET_POINTS
    meets_bad = all(v >= 0 for v in bad_vs_same.values())
    print(
        f"people only, best aggregation: {people} ({people_best:.4f}); people + both judges, "
        f"best reliability model: {best}, {gain:+.2f} points "
        f"({'meets' if meets_gain else 'misses'} the target >= {TARGET_POINTS})"
    )
    print(
        "people + bad judge against people only, same model: "
        + ", ".join(f"{a} {v:+.2f}" for a, v in bad_vs_same.items())
        + f" points; best model against people's best {bad_vs_best:+.2f} "
        f"({'meets' if meets_bad else 'misses'} the target: never below; worst {bad_worst})"
    )
    print(
        f"judge-first at half the people's labels ({first_aggregation}): {first:+.2f} points "
        f"over people only (all their labels, best aggregation), {half:+.2f} over the same "
        "half of the people's labels without judges"
    )
    ceiling = mean["the truth (ceiling), majority"]
    print(
        f"the truth itself (one right label a pair) trains to {ceiling:.4f}: people only is "
        f"{100 * (ceiling - people_best):.2f} points below it, people + both judges "
        f"{100 * (ceiling - mean[f'people + both judges, {best}']):.2f}"
    )
    print(f"{time.perf_counter() - started:.0f} s")
    print(
        json.dumps(
            {
                "accuracy": {k: round(v, 4) for k, v in mean.items()},
                "label_accuracy": {
                    k: round(statistics.mean(v), 4) for k, v in tally.labels.items()
                },
                "labels_choosing_longer": {
                    k: round(statistics.mean(v), 4) for k, v in tally.longer.items()
                },
                "facts": {k: round(statistics.mean(v), 4) for k, v in tally.facts.items()},
                "people_best_aggregation": people,
                "judges_best_model": best,
                "points_over_people": round(gain, 2),
                "bad_judge_points_same_model": {k: round(v, 2) for k, v in bad_vs_same.items()},
                "judge_first_points_over_people": round(first, 2),
                "judge_first_points_over_half_people": round(half, 2),
                "ceiling": round(ceiling, 4),
                "meets": {"judges": meets_gain, "bad_judge": meets_bad},
                "pairs": sizes.n_pool,
                "seeds": sizes.seeds,
                "runs": {k: [round(x, 4) for x in v] for k, v in tally.scores.items()},
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 pairs: a few minutes a seed")
    parser.add_argument("--smoke", action="store_true", help="tiny data, one seed: a few minutes")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--pairs", type=int, default=None, help="pairs in the labelled pool")
    parser.add_argument("--judge-first-aggregation", default="dawid_skene", choices=AGGREGATIONS)
    parser.add_argument(
        "--warm-chain",
        action="store_true",
        help="each variant warm-starts from the project's active model (the old behaviour)",
    )
    args = parser.parse_args()
    sizes = Sizes(
        n_pool=args.pairs or (120 if args.smoke else 600 if args.quick else 1500),
        n_test=100 if args.smoke else 1000,
        seeds=args.seeds or (1 if args.smoke else 3),
        epochs=2 if args.smoke else TRAINING["epochs"],
    )
    import torch

    # A tiny model on a shared CPU: intra-op threads only wait for each other.
    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="prefloop-judges-"))
    started = time.perf_counter()
    tally = Tally(cold=not args.warm_chain)
    try:
        setup_django(workdir)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        backbone = make_backbone(workdir / "backbone")
        for seed in range(sizes.seeds):
            run_seed(seed, tally, sizes, backbone, args.judge_first_aggregation)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(tally, sizes, started, args.judge_first_aggregation)


if __name__ == "__main__":
    main()
