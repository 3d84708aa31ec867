"""Do rankings of 4 responses train a reward model with fewer responses read than pairs?

    nice -n 10 .venv/bin/python bench/ranking_efficiency.py            # 8 seeds, 100-1,600 read
    .venv/bin/python bench/ranking_efficiency.py --seeds 3 --budgets 200,400,800
    .venv/bin/python bench/ranking_efficiency.py --smoke                # one seed, tiny, seconds

The world is active_learning.py's (imported): 30 feature words with hidden weights, a response
is 5 of them and its true reward their sum; 1,000 test pairs measure the model's accuracy
against the truth. The labeler is a Plackett-Luce reader of known noise: each response it reads
is perceived as its true reward plus TEMPERATURE x a standard Gumbel draw, and it orders what it
read by perceived reward. For two responses that is Bradley-Terry, P(a over b) =
sigma((t_a - t_b) / TEMPERATURE); for four, a Plackett-Luce ranking, whose 6 implied pairs are
each as noisy as one pairwise judgment, though not independent of each other. One perception
per response and seed serves both ways of labeling (common random numbers): the pairwise
labeler judges pool pairs (2i, 2i+1)'s two responses, the ranking labeler orders pool pairs 2i
and 2i+1's four responses together; a budget of B responses read is the first B/2 pool pairs
either way, so both ways read the very same responses.

Each (seed, way, budget) trains the product's trainer (rewardtrain.core.training.train, pairs
or rankings as rows, InstructGPT's grouping for the rankings) on a tiny BERT built here, with
a tenth of the judgments held out for early stopping. Each step forwards 64 responses either
way (32 pairs, or 16 rankings of 4), so both get the same steps per epoch for the same budget.

Prints the held-out accuracy per budget (mean and range over seeds) and, per seed, the
responses the rankings need to reach the accuracy pairwise labeling has at each of the largest
budgets (interpolated linearly between budgets, from a coin flip at 0), as a ratio to the
pairwise budget: its mean and range over the seeds, against the target of TARGET_RATIO. The
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.active_learning import (  # noqa: E402
    TRAINING,
    SyntheticPair,
    accuracy,
    labels_to_reach,
    make_backbone,
    world,
)

TARGET_RATIO = 0.6
K = 4
# Perception noise: P(the better of two responses is chosen) = sigma(gap / TEMPERATURE). At 2.0
# the labeler agrees with the truth on about 80% of this world's pairs (printed per run).
TEMPERATURE = 2.0
BUDGETS = (100, 200, 400, 600, 800, 1200, 1600)
SEEDS = 8
# Responses forwarded per optimizer step, either way.
STEP_RESPONSES = 64
HELD_OUT = 0.1


def perceived(seed: int, pool: list[SyntheticPair]) -> list[tuple[float, float]]:
    """The labeler's perception of each pool pair's two responses: true reward plus
    TEMPERATURE x Gumbel(0, 1)."""
    rng = random.Random(f"perception:{seed}")

    def gumbel() -> float:
        return -math.log(-math.log(rng.random() or 1e-300))

    return [(p.true_a + TEMPERATURE * gumbel(), p.true_b + TEMPERATURE * gumbel()) for p in pool]


def pairwise_rows(pool: list[SyntheticPair], seen: list[tuple[float, float]], n: int) -> list:
    """The first n pool pairs, each judged once."""
    from annotate.hashing import user_message

    rows = []
    for i, (p, (sa, sb)) in enumerate(zip(pool[:n], seen[:n], strict=True)):
        chosen, rejected = (p.a, p.b) if sa > sb else (p.b, p.a)
        rows.append({"prompt": user_message(p.prompt), "chosen": chosen, "rejected": rejected})
        rows[-1]["prompt_key"] = f"j{i}"
    return rows


def ranking_rows(pool: list[SyntheticPair], seen: list[tuple[float, float]], n: int) -> list:
    """The first n pool pairs read K=4 at a time (pairs 2i and 2i+1 under pair 2i's prompt),
    each four ordered once by perceived reward."""
    from annotate.hashing import user_message

    rows = []
    for i in range(0, n - 1, 2):
        read = [
            (seen[i][0], pool[i].a),
            (seen[i][1], pool[i].b),
            (seen[i + 1][0], pool[i + 1].a),
            (seen[i + 1][1], pool[i + 1].b),
        ]
        order = [[text] for _, text in sorted(read, key=lambda r: -r[0])]
        rows.append({"prompt": user_message(pool[i].prompt), "ranking": order})
        rows[-1]["prompt_key"] = f"j{i}"
    return rows


def split(rows: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """(train, held out for early stopping): a tenth of the judgments, at least one."""
    order = list(range(len(rows)))
    random.Random(f"split:{seed}").shuffle(order)
    cut = max(1, round(HELD_OUT * len(rows)))
    return [rows[i] for i in order[cut:]], [rows[i] for i in order[:cut]]


def train_and_score(rows: list[dict], per_step: int, backbone: str, test, seed: int, epochs: int):
    from rewardtrain.core.config import TrainConfig
    from rewardtrain.core.scoring import RewardScorer
    from rewardtrain.core.training import train

    train_rows, held_out = split(rows, seed)
    settings = {
        **TRAINING,
        "epochs": epochs,
        "backbone": backbone,
        "batch_size": STEP_RESPONSES // per_step,
        "seed": seed,
        "cpu_threads": 1,
    }
    cfg = TrainConfig(**settings)
    result = train(train_rows, held_out, cfg)
    return accuracy(RewardScorer(result.model, result.tokenizer, "cpu"), test)


def run_seed(seed: int, budgets: list[int], backbone: str, test_size: int, epochs: int) -> dict:
    pool, test = world(seed, max(budgets) // 2, test_size)
    seen = perceived(seed, pool)
    agreement = sum((sa > sb) == p.a_is_better for p, (sa, sb) in zip(pool, seen, strict=True))
    curves: dict[str, list[tuple[int, float]]] = {"pairwise": [], "ranking": []}
    for budget in budgets:
        n = budget // 2  # pool pairs read: 2 responses each
        pairs = pairwise_rows(pool, seen, n)
        curves["pairwise"].append((budget, train_and_score(pairs, 2, backbone, test, seed, epochs)))
        ranks = ranking_rows(pool, seen, n)
        curves["ranking"].append((budget, train_and_score(ranks, K, backbone, test, seed, epochs)))
        print(
            f"  seed {seed}  {budget:5d} read: pairwise {curves['pairwise'][-1][1]:.3f} "
            f"({len(pairs)} judgments), K={K} rankings {curves['ranking'][-1][1]:.3f} "
            f"({len(ranks)} judgments, {6 * len(ranks)} implied pairs)",
            flush=True,
        )
    return {"seed": seed, "labeler_agreement": agreement / len(pool), "curves": curves}


def ratios(curves: dict[str, list[tuple[int, float]]], budget: int) -> float | None:
    """Responses the rankings need to reach pairwise labeling's accuracy at `budget`, over
    `budget` (None: not within the budgets run)."""
    target = dict(curves["pairwise"])[budget]
    needed = labels_to_reach(curves["ranking"], target)
    return None if needed is None else needed / budget


def spread(values: list[float]) -> str:
    return f"{sum(values) / len(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def report(results: list[dict], budgets: list[int], started: float) -> dict:
    print(f"\nHeld-out accuracy against the truth, mean [range] over {len(results)} seed(s):")
    print(f"{'responses read':>15} | {'pairwise':>22} | {'K=4 rankings':>22}")
    for budget in budgets:
        cells = [
            spread([dict(r["curves"][way])[budget] for r in results])
            for way in ("pairwise", "ranking")
        ]
        print(f"{budget:>15} | {cells[0]:>22} | {cells[1]:>22}")
    print(
        "labeler agreement with the truth on pairs: "
        + spread([r["labeler_agreement"] for r in results])
    )
    summary: dict = {"target_ratio": TARGET_RATIO, "ratios": {}}
    print("\nResponses read by K=4 rankings to reach pairwise labeling's accuracy, ratio:")
    for budget in budgets[-3:] if len(budgets) >= 3 else budgets:
        per_seed = [ratios(r["curves"], budget) for r in results]
        # A seed whose rankings never got there counts as 1.0: the mean is then a lower bound.
        counted = [1.0 if v is None else v for v in per_seed]
        mean = sum(counted) / len(counted)
        summary["ratios"][budget] = {
            "per_seed": per_seed,
            "mean": mean,
            "min": min(counted),
            "max": max(counted),
            "never": sum(v is None for v in per_seed),
        }
        shown = ", ".join("never" if v is None else f"{v:.3f}" for v in per_seed)
        print(f"  at pairwise's {budget:>5} read: {spread(counted)} (seeds: {shown})")
    headline = summary["ratios"][budgets[-1]]
    met = headline["mean"] <= TARGET_RATIO
    print(
        f"\nratio at {budgets[-1]} read: {headline['mean']:.3f} (target <= {TARGET_RATIO}): "
        f"{'met' if met else 'NOT met'}; {time.perf_counter() - started:.0f} s"
    )
    summary.update(
        met=met,
        seeds=len(results),
        budgets=budgets,
        temperature=TEMPERATURE,
        accuracy={
            way: {b: [dict(r["curves"][way])[b] for r in results] for b in budgets}
            for way in ("pairwise", "ranking")
        },
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="one seed, tiny budgets: seconds")
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--epochs", type=int, default=TRAINING["epochs"])
    parser.add_argument("--test", type=int, default=1000, help="test pairs")
    args = parser.parse_args()
    budgets = sorted(int(b) for b in args.budgets.split(","))
    seeds, test_size, epochs = args.seeds, args.test, args.epochs
    if args.smoke:
        budgets, seeds, test_size, epochs = [40, 80], 1, 200, 3
    if any(b % K for b in budgets):
        raise SystemExit(f"budgets must be multiples of {K} responses (whole rankings)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="prefloop-ranking-") as workdir:
        backbone = make_backbone(Path(workdir) / "bert")
        results = [run_seed(s, budgets, backbone, test_size, epochs) for s in range(seeds)]
    print(json.dumps(report(results, budgets, started)))


if __name__ == "__main__":
    main()
