"""Does active learning save labels? Random, uncertainty and mixed selection label the same
synthetic pool through the real services, and the reward model's test accuracy is compared.

    .venv/bin/python bench/active_learning.py [--quick | --smoke] [--seeds 5] [--labels 1500]
        [--every 100] [--jobs 1] [--figure PATH]

The world, per seed: 30 feature words with hidden weights, 6 strong ones (+-3.5 to +-4) and 24
weak ones drawn from N(0, 0.5); a response is 5 distinct feature words, its true reward the
sum of their weights, and the truth prefers the response with the larger sum. Most pairs are
settled by a strong word, as many real pairs are by an off-topic or refused answer: a model
learns those from a few labels, and the weak words, which decide the rest, need many more. A pool of pairs
(one Prompt each) waits in a throwaway SQLite project per strategy and seed; a fixed test set
of 1,000 pairs from the same world measures accuracy against the truth. Simulated labelers
agree with the truth 75% of the time; whether they agree is drawn once per pair, so every
strategy meets the same labeler on the same pair.

The loop is the product's: pair_lease_next under the project's selection, comparison_create,
and every `--every` labels run_create + run_execute (the real training code, warm-started from
the active version, on a tiny BERT built here), the new version activated (a fixed retraining
schedule: the newest model always serves), rescore_pairs (which sets each open Pair's
priority), and an evaluation on the test set.

Prints per strategy and seed the labels it needs to reach the accuracy random selection has
at the end on the same seed (interpolated between checkpoints), as a ratio to random's labels,
and that ratio's mean and range over the seeds; the best strategy is the one with the lowest
mean. Writes a learning-curve PNG (mean and min-max band over seeds) to --figure (default: in
the system's temporary folder; the README's figure is annotate/static/annotate/active-learning.png).
The last line is one JSON object. --smoke runs one seed of a tiny budget in seconds. Each
(strategy, seed) runs in a worker process with its own database (--jobs of them at once);
its curve is the same whichever worker runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIGURE = Path(tempfile.gettempdir()) / "prefloop-bench" / "active_learning.png"
STRATEGIES = ("random", "uncertainty", "mixed")
TARGET_RATIO = 0.7
LABELER_ACCURACY = 0.75
FEATURES = 30
STRONG = [4.0, -4.0, 4.0, -4.0, 3.5, -3.5]
WEAK_SD = 0.5
WORDS_PER_RESPONSE = 5
TEST_PAIRS = 1000
LABELERS = 4
# A tiny encoder learns this linear rule in seconds on one CPU thread; the defaults of
# TrainConfig are for pretrained encoders (a far smaller rate, fewer epochs). The patience
# smooths the curves: a noisy validation split stops a warm-started run too early.
TRAINING = {
    "max_length": 32,
    "batch_size": 32,
    "eval_batch_size": 256,
    "epochs": 20,
    "learning_rate": 1e-3,
    "warmup_ratio": 0.0,
    "early_stopping_patience": 4,
    "device": "cpu",
}


@dataclass(frozen=True)
class SyntheticPair:
    prompt: str
    a: str
    b: str
    true_a: float
    true_b: float

    @property
    def a_is_better(self) -> bool:
        return self.true_a > self.true_b


def world(
    seed: int, pool_size: int, test_size: int = TEST_PAIRS
) -> tuple[list[SyntheticPair], list[SyntheticPair]]:
    """(pool, test) of one seed's world."""
    rng = random.Random(seed)
    weights = STRONG + [rng.gauss(0.0, WEAK_SD) for _ in range(FEATURES - len(STRONG))]
    rng.shuffle(weights)

    def response() -> tuple[str, float]:
        words = rng.sample(range(FEATURES), WORDS_PER_RESPONSE)
        return " ".join(f"f{j}" for j in words), sum(weights[j] for j in words)

    def pair(i: int) -> SyntheticPair:
        (a, ta), (b, tb) = response(), response()
        while ta == tb or a == b:
            (b, tb) = response()
        # A distinct prompt per pair: the training splits go by prompt.
        return SyntheticPair(f"q{i % 20} q{(i // 20) % 20} q{(i // 400) % 20}", a, b, ta, tb)

    pool = [pair(i) for i in range(pool_size)]
    test = [pair(pool_size + i) for i in range(test_size)]
    return pool, test


def labeler_agrees(seed: int, index: int) -> bool:
    """The simulated labeler's agreement with the truth on pool pair `index`: one draw per
    pair and seed, the same whichever strategy served it."""
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < LABELER_ACCURACY


def make_backbone(path: Path) -> str:
    """A 1-layer BERT (hidden 32) with a word-level vocabulary of the synthetic words."""
    words = [f"f{i}" for i in range(FEATURES)] + [f"q{i}" for i in range(20)]
    return make_word_bert(path, words + ["user", "assistant", "system", ":"])


def make_word_bert(path: Path, words: list[str]) -> str:
    """A 1-layer BERT (hidden 32) whose tokenizer knows exactly `words` (label_noise uses it too)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {token: i for i, token in enumerate(specials + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def setup_django(workdir: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["MODELS_DIR"] = str(workdir / "models")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # A benchmark is a development run: the development key and settings.
    os.environ.setdefault("DEBUG", "1")
    sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings

    # The tables straight from the models, as the test runner's --no-migrations does: the
    # migrations hold no data steps, and replaying all of them costs ~10 s per run.
    settings.MIGRATION_MODULES = _NoMigrations()
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


class _NoMigrations(dict):
    """MIGRATION_MODULES saying "no migrations" for every app."""

    def __contains__(self, app_label: object) -> bool:
        return True

    def __getitem__(self, app_label: str) -> None:
        return None


def seed_project(
    slug: str, strategy: str, seed: int, pool: list[SyntheticPair], backbone: str, epochs: int
):
    """A project holding the pool (bulk-created; pair i keeps index i in `metadata`)."""
    from django.contrib.auth import get_user_model

    from annotate.hashing import content_hash, user_message
    from annotate.models import Membership, Pair, Project, Prompt, Response

    training = {**TRAINING, "seed": seed, "epochs": epochs}
    project = Project.objects.create(
        name=slug,
        slug=slug,
        selection=strategy,
        random_share=0.2,
        allow_tie=False,
        allow_both_bad=False,
        reward_backbone=backbone,
        training_config=training,
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
    # The pool order is the world's random order: FIFO before any model is a random sample.
    key_rng = random.Random(seed)
    Pair.objects.bulk_create(
        Pair(
            project=project,
            prompt=prompt,
            response_a=responses[2 * i],
            response_b=responses[2 * i + 1],
            random_key=key_rng.random(),
        )
        for i, prompt in enumerate(prompts)
    )
    Project.objects.filter(pk=project.pk).update(pair_count=len(pool))
    users = []
    for k in range(LABELERS):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-labeler-{k}")
        Membership.objects.create(project=project, user=user)
        users.append(user)
    project.refresh_from_db()
    return project, users


def accuracy(scorer, test: list[SyntheticPair]) -> float:
    from annotate.hashing import user_message

    prompts = [user_message(p.prompt) for p in test]
    rewards = scorer.score(prompts + prompts, [p.a for p in test] + [p.b for p in test])
    n = len(test)
    right = sum((rewards[i] > rewards[n + i]) == p.a_is_better for i, p in enumerate(test))
    return right / n


def run_strategy(
    strategy: str,
    seed: int,
    pool: list[SyntheticPair],
    test: list[SyntheticPair],
    backbone: str,
    budget: int,
    every: int,
    epochs: int = TRAINING["epochs"],
) -> list[tuple[int, float]]:
    """The active-learning loop for one strategy and seed: [(labels, test accuracy)]."""
    from annotate.models import Choice
    from annotate.services.labeling import comparison_create, pair_lease_next
    from rewardtrain.models import ModelVersion
    from rewardtrain.services import (
        rescore_pairs,
        run_create,
        run_execute,
        scorer_for,
        version_activate,
    )

    project, users = seed_project(f"{strategy}-{seed}", strategy, seed, pool, backbone, epochs)
    rng = random.Random(seed)
    curve = []
    labels = 0
    while labels < budget:
        for _ in range(every):
            user = users[labels % len(users)]
            lease = pair_lease_next(project=project, labeler=user, rng=rng)
            index = lease.pair.prompt.metadata["index"]
            truth = pool[index].a_is_better
            says_a = truth if labeler_agrees(seed, index) else not truth
            comparison_create(
                pair=lease.pair, labeler=user, choice=Choice.A if says_a else Choice.B
            )
            labels += 1
        run, _ = run_create(project=project, trigger="command")
        run = run_execute(run_id=run.pk)
        if run.status != "succeeded":
            raise SystemExit(f"{strategy} seed {seed}: training failed at {labels}: {run.error}")
        version = ModelVersion.objects.get(run=run)
        if not version.is_active:
            version_activate(version=version)
        rescore_pairs(project=project)
        curve.append((labels, accuracy(scorer_for(version=version), test)))
    return curve


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> float | None:
    """The first label count where a mean curve reaches `target`, interpolated linearly
    between checkpoints; None when it never does."""
    previous = (0, 0.5)  # no labels: a coin flip
    for labels, acc in curve:
        if acc >= target:
            (x0, y0) = previous
            return labels if acc == y0 else x0 + (labels - x0) * (target - y0) / (acc - y0)
        previous = (labels, acc)
    return None


def plot(curves: dict[str, dict[int, list[float]]], budget: int, seeds: int, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"random": "#888888", "uncertainty": "#1f77b4", "mixed": "#d62728"}
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    for strategy, points in curves.items():
        xs = sorted(points)
        mean = [sum(points[x]) / len(points[x]) for x in xs]
        ax.plot(xs, mean, label=strategy, color=colors[strategy], linewidth=2)
        ax.fill_between(
            xs,
            [min(points[x]) for x in xs],
            [max(points[x]) for x in xs],
            color=colors[strategy],
            alpha=0.15,
        )
    ax.set_xlabel("labels (comparisons)")
    ax.set_ylabel("test accuracy against the truth")
    ax.set_title(
        f"Active learning: mean and min-max over {seeds} seeds, labelers 75% right",
        fontsize=10,
    )
    ax.set_xlim(0, budget)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure)
    plt.close(fig)


def seed_ratios(curves: dict[str, list[tuple[int, float]]], budget: int) -> dict[str, float | None]:
    """One seed's label ratio per strategy: the labels it needs to reach random's final
    accuracy on this seed, over random's labels (None: never within the budget)."""
    target = curves["random"][-1][1]
    ratios: dict[str, float | None] = {"random": 1.0}  # the reference, by definition
    for strategy, curve in curves.items():
        if strategy == "random":
            continue
        needed = labels_to_reach(curve, target)
        ratios[strategy] = None if needed is None else needed / budget
    return ratios


def summary(ratios: list[float | None]) -> dict[str, float | int]:
    """Mean and range over seeds; a seed that never reached random's accuracy counts as 1.0
    (it needed more labels than random did, so the mean is then a lower bound)."""
    counted = [1.0 if r is None else r for r in ratios]
    return {
        "mean": sum(counted) / len(counted),
        "min": min(counted),
        "max": max(counted),
        "never": sum(r is None for r in ratios),
    }


@dataclass(frozen=True)
class Sizes:
    budget: int  # labels per strategy and seed
    every: int  # labels between retrains
    pool: int  # pairs in the pool
    test: int  # test pairs
    epochs: int


# This process's backbone, made once with its Django setup (a worker runs many units).
_BACKBONE: dict[str, str] = {}


def _worker_backbone(workdir: Path) -> str:
    """Django on this process's own SQLite file, and the backbone, once per process."""
    if "path" not in _BACKBONE:
        import torch

        # A tiny model on a shared CPU: intra-op threads only wait for each other.
        torch.set_num_threads(1)
        own = Path(tempfile.mkdtemp(prefix="worker-", dir=workdir))
        setup_django(own)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        _BACKBONE["path"] = make_backbone(own / "backbone")
    return _BACKBONE["path"]


def run_unit(
    strategy: str, seed: int, sizes: Sizes, workdir: Path
) -> tuple[str, int, list[tuple[int, float]], float]:
    """One strategy on one seed's world, in a worker process: (strategy, seed, curve, seconds)."""
    backbone = _worker_backbone(workdir)
    pool, test = world(seed, sizes.pool, sizes.test)
    tick = time.perf_counter()
    curve = run_strategy(
        strategy, seed, pool, test, backbone, sizes.budget, sizes.every, sizes.epochs
    )
    return strategy, seed, curve, time.perf_counter() - tick


def run_all(
    seeds: int, sizes: Sizes, jobs: int
) -> tuple[dict[str, dict[int, list[float]]], dict[str, list[float | None]]]:
    """Every (seed, strategy) unit on `jobs` worker processes, each with its own database;
    a unit's curve does not depend on which worker ran it or when. Returns the accuracies
    per strategy and label count, and the label ratios per strategy in seed order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    workdir = Path(tempfile.mkdtemp(prefix="prefloop-al-"))
    by_seed: dict[int, dict[str, list[tuple[int, float]]]] = {}
    try:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as executor:
            futures = [
                executor.submit(run_unit, strategy, seed, sizes, workdir)
                for seed in range(seeds)
                for strategy in STRATEGIES
            ]
            for future in as_completed(futures):
                strategy, seed, curve, seconds = future.result()
                print(
                    f"seed {seed} {strategy:<11} "
                    + " ".join(f"{n}:{a:.3f}" for n, a in curve)
                    + f"  ({seconds:.0f} s)",
                    flush=True,
                )
                seed_curves = by_seed.setdefault(seed, {})
                seed_curves[strategy] = curve
                if len(seed_curves) == len(STRATEGIES):
                    ratios = seed_ratios(seed_curves, sizes.budget)
                    print(
                        f"seed {seed} label ratio to reach random's "
                        f"{seed_curves['random'][-1][1]:.3f}: "
                        + ", ".join(
                            f"{s} {'never' if r is None else f'{r:.2f}'}" for s, r in ratios.items()
                        ),
                        flush=True,
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    curves: dict[str, dict[int, list[float]]] = {s: {} for s in STRATEGIES}
    per_seed: dict[str, list[float | None]] = {s: [] for s in STRATEGIES}
    for seed in range(seeds):
        ratios = seed_ratios(by_seed[seed], sizes.budget)
        for strategy in STRATEGIES:
            per_seed[strategy].append(ratios[strategy])
            for labels, acc in by_seed[seed][strategy]:
                curves[strategy].setdefault(labels, []).append(acc)
    return curves, per_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer labels: minutes")
    parser.add_argument("--smoke", action="store_true", help="one seed, a tiny budget: seconds")
    parser.add_argument("--seeds", type=int, default=None, help="default 5 (smoke: 1)")
    parser.add_argument("--labels", type=int, default=None, help="labels per strategy")
    parser.add_argument("--every", type=int, default=None, help="retrain every this many labels")
    parser.add_argument("--pool", type=int, default=None, help="pairs in the pool")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--figure", type=Path, default=DEFAULT_FIGURE, help="the PNG to write")
    args = parser.parse_args()
    # The smoke run takes every step once (FIFO leases, training, a warm-started retrain,
    # rescoring, leases by priority, the ratios and the figure) on data too small to mean much.
    seeds = args.seeds or (1 if args.smoke else 5)
    budget = args.labels or (40 if args.smoke else 600 if args.quick else 1500)
    every = args.every or (20 if args.smoke else 100)
    sizes = Sizes(
        budget=budget,
        every=every,
        pool=args.pool or (80 if args.smoke else 2000 if args.quick else 3000),
        test=100 if args.smoke else TEST_PAIRS,
        epochs=1 if args.smoke else TRAINING["epochs"],
    )
    pool_size = sizes.pool
    started = time.perf_counter()
    curves, per_seed = run_all(seeds, sizes, max(1, args.jobs))

    final = {s: sum(points[budget]) / seeds for s, points in curves.items()}
    stats = {s: summary(per_seed[s]) for s in STRATEGIES}
    print(f"\nlabel ratio over {seeds} seeds (labels to reach random's final accuracy on the same")
    print(f"seed, over random's {budget}; a seed that never gets there counts as 1.0):")
    for s in STRATEGIES:
        st = stats[s]
        never = f", {st['never']} seed(s) never" if st["never"] else ""
        print(
            f"{s:<11} final accuracy {final[s]:.3f}  ratio mean {st['mean']:.3f}"
            f"  range {st['min']:.2f}-{st['max']:.2f}{never}"
        )
    best = min(STRATEGIES[1:], key=lambda s: stats[s]["mean"])
    label_ratio = stats[best]["mean"]
    verdict = "meets" if label_ratio <= TARGET_RATIO else "misses"
    print(
        f"best: {best}, label ratio mean {label_ratio:.3f} "
        f"(range {stats[best]['min']:.2f}-{stats[best]['max']:.2f}; {verdict} the target "
        f"<= {TARGET_RATIO}); {time.perf_counter() - started:.0f} s"
    )
    plot(curves, budget, seeds, args.figure)
    print(f"learning curves: {args.figure}")
    mean_curves = {
        s: [(n, sum(v) / len(v)) for n, v in sorted(points.items())] for s, points in curves.items()
    }
    print(
        json.dumps(
            {
                "label_ratio": round(label_ratio, 4),
                "label_ratio_range": [round(stats[best]["min"], 4), round(stats[best]["max"], 4)],
                "best_strategy": best,
                "target_ratio": TARGET_RATIO,
                "meets_target": label_ratio <= TARGET_RATIO,
                "ratio": {
                    s: {k: round(v, 4) if isinstance(v, float) else v for k, v in st.items()}
                    for s, st in stats.items()
                },
                "ratio_per_seed": {
                    s: [None if r is None else round(r, 4) for r in rs]
                    for s, rs in per_seed.items()
                },
                "final_accuracy": {s: round(a, 4) for s, a in final.items()},
                "curves": {s: [[n, round(a, 4)] for n, a in c] for s, c in mean_curves.items()},
                "labels": budget,
                "every": every,
                "pool": pool_size,
                "seeds": seeds,
                "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
                "figure": str(args.figure),
                "seconds": round(time.perf_counter() - started),
            }
        )
    )


if __name__ == "__main__":
    main()
