"""Does weighing labelers by reliability train a better reward model? Simulated labelers,
honest and careless, label a synthetic pool through the real services; the reward model is
trained once per aggregation and scored against the hidden truth; TRL's RewardTrainer on the
majority-vote export is the reference.

    .venv/bin/python bench/label_noise.py            # 1,500 pairs x 3 votes, 3 seeds
    .venv/bin/python bench/label_noise.py --quick    # 600 pairs, 3 seeds
    .venv/bin/python bench/label_noise.py --smoke    # tiny data, one seed, a 3,000-vote scale
    .venv/bin/python bench/label_noise.py --scale 1000000   # aggregation time and memory only

The world, per seed: 24 feature words with hidden weights drawn from N(0, 1); a response is 5
distinct feature words plus 0-8 filler words that weigh nothing, so length says nothing about
quality; the truth prefers the larger sum. A tiny BERT (built here, word-level vocabulary)
learns the rule in seconds on one CPU thread; 1,000 fixed test pairs measure accuracy
against the truth.

The crowd: 10 honest labelers (each wrong on a share of pairs drawn from 10-25%), two
always-left (the response shown on the left, as the lease drew it), two coin-flip and four
always-longer: 8 careless labelers of 18. Each pair is labelled by 3 distinct labelers,
through pair_lease_next and comparison_create. The same comparisons then train one model
per aggregation (the project's setting, through run_create and run_execute, the real
training path). TRL's RewardTrainer trains on the `trl` export of the majority vote (train
split, ties dropped) with the same model, rate, batch and epochs, and is scored the same way.

Soft targets (the posterior P(chosen better), the default) against hard ones with the
variants' aggregation; and on single-vote data (800 pairs, one honest vote each, 20% of them
flipped) the default training against TRL.

`--scale N` times each aggregation on N synthetic votes from 1,000 labelers (arrays, as the
project's votes arrive from the database), each in a child process so that its peak memory
is its own. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AGGREGATIONS = ("majority", "dawid_skene", "glad", "mace")
FEATURES = 24
WORDS = 5
FILLER = 8
TEST_PAIRS = 1000
SINGLE_VOTE_PAIRS = 800
FLIP_SHARE = 0.2
HONEST = 10
# Careless labelers by kind. Four always-longer: verbosity bias is the common one, and it is
# the noise that teaches a model something false (random noise mostly averages out).
CARELESS = {"always_left": 2, "coin_flip": 2, "always_longer": 4}
REDUNDANCY = 3
# A tiny encoder learns this rule in seconds; TrainConfig's defaults are for pretrained ones.
TRAINING = {
    "max_length": 48,
    "batch_size": 32,
    "eval_batch_size": 256,
    "epochs": 20,
    "learning_rate": 1e-3,
    "warmup_ratio": 0.0,
    "early_stopping_patience": 4,
    "device": "cpu",
}
# Label smoothing 0.1 and the generalized cross-entropy loss (Zhang & Sabuncu 2018) were
# measured here too and taken out (see the README's Training section for their figures).
VARIANTS = {
    "soft targets (default)": {},
    "hard targets": {"use_soft_labels": False},
}
SINGLE_VARIANTS = ("soft targets (default)",)
TARGET_POINTS = 3.0
SINGLE_TARGET_POINTS = 1.0


@dataclass(frozen=True)
class SyntheticPair:
    prompt: str
    a: str
    b: str
    a_better: bool
    a_longer: bool


def world(seed: int, n_pool: int, n_single: int, n_test: int) -> tuple[list, list, list]:
    """(pool, single-vote pool, test) of one seed's world."""
    rng = random.Random(seed)
    weights = [rng.gauss(0.0, 1.0) for _ in range(FEATURES)]

    def response() -> tuple[str, float]:
        words = [f"f{j}" for j in rng.sample(range(FEATURES), WORDS)]
        words += [f"z{rng.randrange(4)}" for _ in range(rng.randint(0, FILLER))]
        rng.shuffle(words)
        return " ".join(words), sum(weights[int(w[1:])] for w in words if w[0] == "f")

    def pair(i: int) -> SyntheticPair:
        (a, ta), (b, tb) = response(), response()
        while ta == tb or len(a) == len(b):
            (b, tb) = response()
        # A distinct prompt per pair: the training splits go by prompt.
        prompt = f"q{i % 20} q{(i // 20) % 20} q{(i // 400) % 20}?"
        return SyntheticPair(prompt, a, b, ta > tb, len(a) > len(b))

    pool = [pair(i) for i in range(n_pool)]
    single = [pair(n_pool + i) for i in range(n_single)]
    test = [pair(n_pool + n_single + i) for i in range(n_test)]
    return pool, single, test


def make_backbone(path: Path) -> str:
    """A 1-layer BERT (hidden 32) with a word-level vocabulary of the synthetic words."""
    from bench.active_learning import make_word_bert

    words = [f"f{i}" for i in range(FEATURES)] + [f"z{i}" for i in range(4)]
    return make_word_bert(
        path, words + [f"q{i}" for i in range(20)] + ["?", "user", "assistant", ":"]
    )


def setup_django(workdir: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["MODELS_DIR"] = str(workdir / "models")
    # A throwaway database on this machine: development settings.
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed_project(slug: str, pool: list[SyntheticPair], backbone: str, redundancy: int, epochs):
    from annotate.hashing import content_hash, user_message
    from annotate.models import Pair, Project, Prompt, Response

    project = Project.objects.create(
        name=slug,
        slug=slug,
        redundancy=redundancy,
        selection="random",
        allow_tie=False,
        allow_both_bad=False,
        reward_backbone=backbone,
        training_config={**TRAINING, "epochs": epochs},
    )
    prompts = Prompt.objects.bulk_create(
        Prompt(
            project=project,
            messages=user_message(p.prompt),
            content_hash=content_hash(user_message(p.prompt)),
            metadata={"index": i},
        )
        for i, p in enumerate(pool)
    )
    responses = Response.objects.bulk_create(
        Response(prompt=prompt, text=text, content_hash=content_hash(text))
        for prompt, p in zip(prompts, pool, strict=True)
        for text in (p.a, p.b)
    )
    Pair.objects.bulk_create(
        Pair(
            project=project,
            prompt=prompt,
            response_a=responses[2 * i],
            response_b=responses[2 * i + 1],
        )
        for i, prompt in enumerate(prompts)
    )
    Project.objects.filter(pk=project.pk).update(pair_count=len(pool))
    project.refresh_from_db()
    # The lease carries the pair's id, not its prompt's metadata: pair id -> pool index.
    project.bench_index = {
        pair_id: meta["index"]
        for pair_id, meta in Pair.objects.filter(project=project).values_list(
            "id", "prompt__metadata"
        )
    }
    return project


def crowd(project, seed: int) -> list[tuple[object, str, float]]:
    """The project's labelers: (user, kind, error rate)."""
    from django.contrib.auth import get_user_model

    from annotate.models import Membership

    rng = random.Random(seed)
    kinds = [("honest", rng.uniform(0.10, 0.25)) for _ in range(HONEST)]
    kinds += [(kind, 0.0) for kind, n in CARELESS.items() for _ in range(n)]
    people = []
    for k, (kind, error) in enumerate(kinds):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-{k}-{kind}")
        Membership.objects.create(project=project, user=user)
        people.append((user, kind, error))
    return people


def says_a(kind: str, error: float, pair: SyntheticPair, a_left: bool, rng) -> bool:
    if kind == "honest":
        return pair.a_better if rng.random() >= error else not pair.a_better
    if kind == "always_left":
        return a_left
    if kind == "coin_flip":
        return rng.random() < 0.5
    return pair.a_longer


def label_pool(project, pool: list[SyntheticPair], people, seed: int) -> dict[str, float]:
    """Every labeler leases and judges in turn until no pair is left; returns the share of
    votes that agree with the truth, by kind."""
    from annotate.models import Choice
    from annotate.services.labeling import comparison_create, pair_lease_next

    rng = random.Random(seed)
    right: dict[str, list[int]] = {}
    active = list(people)
    while active:
        # A fresh order each round: labelers who always followed each other would get the
        # same pairs from the queue, and two always-longer labelers who always agree look
        # perfectly reliable to every model that learns reliability from agreement.
        rng.shuffle(active)
        for person in list(active):
            user, kind, error = person
            lease = pair_lease_next(project=project, labeler=user, rng=rng)
            if lease is None:
                active.remove(person)
                continue
            pair = pool[project.bench_index[lease.pair_id]]
            vote = says_a(kind, error, pair, lease.left == "a", rng)
            comparison_create(pair=lease.pair, labeler=user, choice=Choice.A if vote else Choice.B)
            right.setdefault(kind, []).append(int(vote == pair.a_better))
    return {kind: sum(v) / len(v) for kind, v in right.items()}


def single_vote_labels(project, pool: list[SyntheticPair], seed: int) -> None:
    """One honest vote per pair, exactly FLIP_SHARE of them flipped."""
    from django.contrib.auth import get_user_model

    from annotate.models import Choice, Membership
    from annotate.services.labeling import comparison_create, pair_lease_next

    rng = random.Random(seed)
    flipped = set(rng.sample(range(len(pool)), int(FLIP_SHARE * len(pool))))
    user, _ = get_user_model().objects.get_or_create(username="bench-single")
    Membership.objects.create(project=project, user=user)
    while (lease := pair_lease_next(project=project, labeler=user, rng=rng)) is not None:
        index = project.bench_index[lease.pair_id]
        vote = pool[index].a_better != (index in flipped)
        comparison_create(pair=lease.pair, labeler=user, choice=Choice.A if vote else Choice.B)


def accuracy(scorer, test: list[SyntheticPair]) -> float:
    from annotate.hashing import user_message

    prompts = [user_message(p.prompt) for p in test]
    rewards = scorer.score(prompts + prompts, [p.a for p in test] + [p.b for p in test])
    n = len(test)
    return sum((rewards[i] > rewards[n + i]) == p.a_better for i, p in enumerate(test)) / n


def label_accuracy(project, pool: list[SyntheticPair]) -> tuple[float, float]:
    """Shares of the project's preference rows (under its aggregation) whose chosen response
    is truly better, and is the longer one (the truth: about half)."""
    from annotate.selectors.dataset import preference_rows

    right, longer = [], []
    for row in preference_rows(project):
        pair = pool[project.bench_index[row["pair_id"]]]
        chosen_a = row["chosen_id"] < row["rejected_id"]
        right.append(chosen_a == pair.a_better)
        longer.append(chosen_a == pair.a_longer)
    return sum(right) / len(right), sum(longer) / len(longer)


def train_ours(
    project, test, aggregation: str, overrides: dict | None = None, *, cold: bool = True
) -> float:
    """Train through run_create / run_execute under `aggregation`; the test accuracy. `cold`
    (`warm_start` off) trains from the backbone, so that each variant trained on one project
    starts from the same place and not from the variant promoted before it (until 2026-12-07
    they chained: bench/RESULTS.md); `cold=False` warm-starts as a user's next run does."""
    from annotate.models import Project
    from rewardtrain.models import ModelVersion
    from rewardtrain.services import run_create, run_execute, scorer_for

    Project.objects.filter(pk=project.pk).update(aggregation=aggregation)
    project.refresh_from_db()
    overrides = {**(overrides or {}), **({"warm_start": False} if cold else {})}
    run, _ = run_create(project=project, trigger="command", config_overrides=overrides)
    run = run_execute(run_id=run.pk)
    if run.status != "succeeded":
        raise SystemExit(f"training failed ({aggregation}, {overrides}): {run.error}")
    assert run.snapshot["aggregation"] == aggregation
    return accuracy(scorer_for(version=ModelVersion.objects.get(run=run)), test)


def train_trl(project, test, backbone: str, workdir: Path, epochs: int, seed: int) -> float:
    """TRL's RewardTrainer on the majority-vote `trl` export (train split, ties dropped)."""
    import torch
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, PrinterCallback
    from transformers.utils import logging as hf_logging
    from trl import RewardConfig, RewardTrainer

    from annotate.models import Project
    from annotate.services.exports import ExportOptions, dataset_export

    hf_logging.set_verbosity_error()
    disable_progress_bar()
    Project.objects.filter(pk=project.pk).update(aggregation="majority")
    project.refresh_from_db()
    out = workdir / f"{project.slug}-trl.jsonl"
    manifest = dataset_export(
        project=project,
        options=ExportOptions(format="trl", split="train", drop_ties=True),
        out=out,
    )
    assert manifest["aggregation"] == "majority"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    data = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    tok = AutoTokenizer.from_pretrained(backbone)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1)
    args = RewardConfig(
        output_dir=str(workdir / "trl-out"),
        per_device_train_batch_size=TRAINING["batch_size"],
        num_train_epochs=epochs,
        learning_rate=TRAINING["learning_rate"],
        weight_decay=0.01,
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        max_length=TRAINING["max_length"],
        bf16=False,
        eos_token=tok.sep_token,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        logging_steps=10_000,
        disable_tqdm=True,
        seed=seed,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    model.eval()
    wins = []
    with torch.inference_mode():
        for start in range(0, len(test), 256):
            batch = test[start : start + 256]
            texts = [p.prompt + (p.a, p.b)[k] + tok.sep_token for k in (0, 1) for p in batch]
            enc = tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
            r_a, r_b = model(**enc).logits.squeeze(-1).float().chunk(2)
            wins += [bool(x > y) == p.a_better for x, y, p in zip(r_a, r_b, batch, strict=True)]
    shutil.rmtree(workdir / "trl-out", ignore_errors=True)
    return sum(wins) / len(wins)


def summary(values: list[float]) -> str:
    mean = statistics.mean(values)
    return f"{mean:.4f} (range {min(values):.4f}-{max(values):.4f})"


def scale_child(n: int) -> None:
    """One aggregation of n planted votes in this process; prints one JSON line."""
    import numpy as np

    from annotate.quality.aggregation import fit_votes

    method = os.environ["LABEL_NOISE_METHOD"]
    rng = np.random.default_rng(0)
    workers = 1000
    pairs = n // REDUNDANCY
    truth = rng.random(pairs) < 0.5
    pair = np.repeat(np.arange(pairs), REDUNDANCY)
    worker = rng.integers(0, workers, len(pair))
    accuracy_of = np.where(np.arange(workers) % 8 < 3, 0.5, rng.uniform(0.75, 0.9, workers))
    vote = np.where(rng.random(len(pair)) < accuracy_of[worker], truth[pair], ~truth[pair])
    del accuracy_of
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fit = fit_votes(method, pair, worker, vote, n_pairs=pairs, n_workers=workers)
    print(
        json.dumps(
            {
                "method": method,
                "votes": len(pair),
                "seconds": fit.seconds,
                "label_accuracy": float(((fit.p_a > 0.5) == truth).mean()),
                "rss_before_mb": before,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def run_scale(n: int, sizes: list[int] | None = None) -> dict:
    results = {}
    for method in AGGREGATIONS:
        per_size = {}
        for size in sizes or sorted({n // 10, n}):
            proc = subprocess.run(
                [sys.executable, __file__, "--scale-child", str(size)],
                capture_output=True,
                text=True,
                env={**os.environ, "LABEL_NOISE_METHOD": method, "PYTHONWARNINGS": "ignore"},
            )
            if proc.returncode:
                raise SystemExit(f"{method} at {size} failed:\n{proc.stderr[-2000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            per_size[size] = result
            print(
                f"{method:<12} {size:>9,} votes from 1,000 labelers: {result['seconds']:6.1f} s, "
                f"peak RSS {result['peak_rss_mb']:6.0f} MB (before the fit "
                f"{result['rss_before_mb']:.0f} MB), label accuracy "
                f"{result['label_accuracy']:.4f}",
                flush=True,
            )
        results[method] = per_size
    slowest = max(r[n]["seconds"] for r in results.values())
    verdict = "meets" if slowest < 60 else "misses"
    print(f"slowest aggregation of {n:,} votes: {slowest:.1f} s ({verdict} the target < 60 s)")
    return {"scale": {m: {str(k): v for k, v in r.items()} for m, r in results.items()}}


@dataclass
class Tally:
    """The figures of every seed so far, by name."""

    scores: dict[str, list[float]] = field(default_factory=dict)  # the crowd pool's
    single: dict[str, list[float]] = field(default_factory=dict)  # the single-vote pool's
    label_truth: dict[str, list[float]] = field(default_factory=dict)  # labels against truth


@dataclass(frozen=True)
class Sizes:
    n_pool: int
    n_single: int
    n_test: int
    seeds: int
    epochs: int


def run_seed(
    seed: int, tally: Tally, sizes: Sizes, backbone: str, workdir: Path, variants_aggregation: str
) -> None:
    """One seed: the crowd pool under every aggregation, TRL on its majority, the training
    variants, then the single-vote pool; prints the seed's line."""
    tick = time.perf_counter()
    pool, single_pool, test = world(seed, sizes.n_pool, sizes.n_single, sizes.n_test)
    project = seed_project(f"crowd-{seed}", pool, backbone, REDUNDANCY, sizes.epochs)
    people = crowd(project, seed)
    for kind, share in label_pool(project, pool, people, seed).items():
        tally.label_truth.setdefault(kind, []).append(share)
    line = [f"seed {seed}:"]
    for aggregation in AGGREGATIONS:
        acc = train_ours(project, test, aggregation, {"seed": seed})
        tally.scores.setdefault(aggregation, []).append(acc)
        labels, longer = label_accuracy(project, pool)
        tally.label_truth.setdefault(f"labels by {aggregation}", []).append(labels)
        tally.label_truth.setdefault(f"longer chosen by {aggregation}", []).append(longer)
        line.append(f"{aggregation} {acc:.4f} (labels {labels:.3f}, longer {longer:.3f})")
    acc = train_trl(project, test, backbone, workdir, sizes.epochs, seed)
    tally.scores.setdefault("TRL on majority", []).append(acc)
    line.append(f"TRL {acc:.4f}")
    for name, overrides in VARIANTS.items():
        if name == "soft targets (default)":
            continue
        acc = train_ours(project, test, variants_aggregation, {"seed": seed, **overrides})
        tally.scores.setdefault(f"{variants_aggregation}, {name}", []).append(acc)
        line.append(f"{name} {acc:.4f}")
    noisy = seed_project(f"single-{seed}", single_pool, backbone, 1, sizes.epochs)
    single_vote_labels(noisy, single_pool, seed)
    for name in SINGLE_VARIANTS:
        acc = train_ours(noisy, test, "majority", {"seed": seed, **VARIANTS[name]})
        tally.single.setdefault(name, []).append(acc)
        line.append(f"single-vote {name} {acc:.4f}")
    acc = train_trl(noisy, test, backbone, workdir, sizes.epochs, seed)
    tally.single.setdefault("TRL", []).append(acc)
    line.append(f"single-vote TRL {acc:.4f} ({time.perf_counter() - tick:.0f} s)")
    print("  ".join(line), flush=True)


def report(tally: Tally, sizes: Sizes, started: float, scale: dict) -> None:
    """The means over seeds against the targets, then every figure as one JSON line."""
    print(
        f"\n{sizes.n_pool} pairs x {REDUNDANCY} votes; {HONEST} honest labelers and "
        f"{', '.join(f'{n} {k}' for k, n in CARELESS.items())}; {sizes.seeds} seed(s); clean "
        f"test accuracy on {sizes.n_test} pairs (mean, range over seeds)"
    )
    for kind, shares in tally.label_truth.items():
        if kind.startswith("longer"):
            print(f"  rows whose {kind}: {statistics.mean(shares):.3f}")
            continue
        what = kind if kind.startswith("labels") else f"votes of {kind}"
        print(f"  {what:<30} agree with the truth: {statistics.mean(shares):.3f}")
    for name, values in tally.scores.items():
        print(f"  {name:<40} {summary(values)}")
    mean = {k: statistics.mean(v) for k, v in tally.scores.items()}
    best = max(AGGREGATIONS, key=lambda a: mean[a])
    over_majority = 100 * (mean[best] - mean["majority"])
    over_trl = 100 * (mean[best] - mean["TRL on majority"])
    ok = over_majority >= TARGET_POINTS and over_trl > 0
    print(
        f"best aggregation: {best}, {over_majority:+.2f} points over majority, "
        f"{over_trl:+.2f} over TRL ({'meets' if ok else 'misses'} the target: "
        f">= {TARGET_POINTS} over majority and above TRL)"
    )
    print(f"\nsingle vote, {sizes.n_single} pairs, {FLIP_SHARE:.0%} flipped:")
    for name, values in tally.single.items():
        print(f"  {name:<40} {summary(values)}")
    single_mean = {k: statistics.mean(v) for k, v in tally.single.items()}
    default_over_trl = 100 * (single_mean["soft targets (default)"] - single_mean["TRL"])
    print(
        f"default training {default_over_trl:+.2f} points over TRL "
        f"({'meets' if default_over_trl >= SINGLE_TARGET_POINTS else 'misses'} the target "
        f">= {SINGLE_TARGET_POINTS})"
    )
    print(f"{time.perf_counter() - started:.0f} s")
    runs = {**tally.scores, **tally.single}
    print(
        json.dumps(
            {
                "accuracy": {k: round(v, 4) for k, v in mean.items()},
                "single_vote_accuracy": {k: round(v, 4) for k, v in single_mean.items()},
                "best_aggregation": best,
                "points_over_majority": round(over_majority, 2),
                "points_over_trl": round(over_trl, 2),
                "single_vote_points_over_trl": round(default_over_trl, 2),
                "pairs": sizes.n_pool,
                "seeds": sizes.seeds,
                "runs": {k: [round(x, 4) for x in v] for k, v in runs.items()},
                **scale,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 pairs: a few minutes")
    parser.add_argument("--smoke", action="store_true", help="tiny data, one seed: seconds")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--pairs", type=int, default=None, help="pairs in the labelled pool")
    parser.add_argument("--variants-aggregation", default="dawid_skene")
    parser.add_argument("--scale", type=int, default=0, help="only time aggregation of N votes")
    parser.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_child:
        scale_child(args.scale_child)
        return
    if args.scale:
        print(json.dumps(run_scale(args.scale)))
        return
    scale = run_scale(3000, [3000]) if args.smoke else {}

    sizes = Sizes(
        n_pool=args.pairs or (60 if args.smoke else 600 if args.quick else 1500),
        n_single=60 if args.smoke else SINGLE_VOTE_PAIRS,
        n_test=100 if args.smoke else TEST_PAIRS,
        seeds=args.seeds or (1 if args.smoke else 3),
        epochs=2 if args.smoke else TRAINING["epochs"],
    )
    import torch

    # A tiny model on a shared CPU: intra-op threads only wait for each other.
    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="prefloop-noise-"))
    started = time.perf_counter()
    tally = Tally()
    try:
        setup_django(workdir)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        backbone = make_backbone(workdir / "backbone")
        for seed in range(sizes.seeds):
            run_seed(seed, tally, sizes, backbone, workdir, args.variants_aggregation)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(tally, sizes, started, scale)


if __name__ == "__main__":
    main()
