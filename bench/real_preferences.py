"""The default training on real human preferences, against TRL's RewardTrainer on the same rows.

    .venv/bin/python bench/real_preferences.py HH_FILE               # 1,800 rows, 3 splits
    .venv/bin/python bench/real_preferences.py HH_FILE --rows 600 --variants ours,ours-no-refit
    .venv/bin/python bench/real_preferences.py --smoke                # seconds: built rows

HH_FILE is Anthropic's HH-RLHF `harmless-base/test.jsonl.gz` (2,312 pairs, judged by people),
from the `anthropics/hh-rlhf` repository on GitHub; nothing is fetched at run time. The bench
takes the file's first `--rows` lines, imports them into a throwaway SQLite project with
`manage.py import_pairs`, as a user would, and reads the project's preference rows as a training
run does. Each split draws test, validation and train (10/10/80, by prompt, as the app's own
split; split 0 is the app's split, the others hash the prompt with another salt). Per split:

- `ours`: prefloop's default training (TrainConfig()), its early stopping on validation, then
  the `refit` on train + validation; scored on test;
- `ours-no-refit`: the same without the refit (the model early stopping chose);
- `trl-defaults`: TRL's RewardTrainer with its own defaults (3 epochs, batch 8, lr 1e-4, no
  warm-up, gradient checkpointing) on train + validation, as a TRL user trains on everything;
- `trl-ours`: TRL with prefloop's settings (3 epochs, batch 16, lr 5e-5, 10% warm-up, weight
  decay 0.01, no checkpointing) on train + validation;
- "shorter reply wins": the baseline that needs no model (on the test split, and the whole file).

Both trainers get the same backbone (the bundled MiniLM), the same text (prefloop's input
format, "User: ...\\n\\nAssistant: ..."), max_length 512 (MiniLM's positions; TRL's default 1024
would overrun them) and bf16 only where the hardware has it. Every run is a child process (its
peak RSS is its own; bench/train_vs_trl.py runs it). Printed: held-out accuracy, mean and range
over the splits, pairs/s (training steps only: a refit's steps count), wall seconds, peak RSS,
and the targets: ours >= the best TRL + 1 point in mean accuracy, and >= 2x TRL's pairs/s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.train_vs_trl import _child, _fmt, _spread, peak_rss_mb, run_ours, run_trl  # noqa: E402

VARIANTS = {
    # name: (trainer, what differs from the defaults)
    "ours": ("ours", {}),
    "ours-no-refit": ("ours", {"refit": False}),
    "trl-defaults": ("trl", {"trl_defaults": True}),
    "trl-ours": ("trl", {}),
}
SHARES = {"validation": 0.1, "test": 0.1}
SLUG = "hh-bench"
# --smoke: a tiny word-level BERT (no download) and settings it trains on in a second.
SMOKE_CONFIG = {"max_length": 64, "batch_size": 4, "epochs": 2, "learning_rate": 1e-3}
SMOKE_TOPICS = ["tomatoes", "bicycles", "glaciers", "coffee", "chess", "volcanoes", "guitars"]


def smoke_lines(n: int = 28) -> list[str]:
    """HH-shaped transcripts built here (no data shipped): a shared conversation, then a
    helpful reply (chosen) or a curt one (rejected); every third one two turns long."""
    lines = []
    for i in range(n):
        topic = SMOKE_TOPICS[i % len(SMOKE_TOPICS)]
        talk = f"\n\nHuman: Tell me about {topic}, please ({i}).\n\nAssistant: "
        if i % 3 == 0:
            talk += f"Sure. What about {topic}?\n\nHuman: Anything useful.\n\nAssistant: "
        chosen = f"{topic.capitalize()} are interesting; here is one useful fact about them."
        lines.append(json.dumps({"chosen": talk + chosen, "rejected": talk + "No."}))
    return lines


def file_lines(path: Path, rows: int) -> list[str]:
    """The first `rows` lines of a JSON Lines file, gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    lines = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if len(lines) == rows:
                break
            lines.append(line)
    return lines


def import_rows(lines: list[str], workdir: Path) -> list[dict]:
    """The lines through `manage.py import_pairs` into a new project; its preference rows."""
    from bench.active_learning import setup_django

    setup_django(workdir)
    from django.core.management import call_command

    from annotate.models import Project
    from rewardtrain.selectors.runs import training_data

    path = workdir / "hh.jsonl"
    path.write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    # As published: a bad line fails the bench (no --skip-invalid).
    call_command("import_pairs", str(path), project=SLUG, create=True)
    data = training_data(project=Project.objects.get(slug=SLUG))
    return [row for rows in data.splits.values() for row in rows]


def split_rows(rows: list[dict], k: int) -> dict[str, list[dict]]:
    """Split k: 0 is the app's own split, k > 0 the same rule with the prompt salted by k."""
    from annotate.splits import split_of

    parts: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for row in rows:
        split = row["split"] if k == 0 else split_of(f"{k}:{row['prompt_key']}", **_shares())
        parts[split].append(row)
    return parts


def _shares() -> dict[str, float]:
    return {"validation_share": SHARES["validation"], "test_share": SHARES["test"]}


def shorter_wins(rows: list[dict]) -> float:
    """Accuracy of "the shorter reply is the better one" (equal lengths: half right)."""
    score = sum(
        1.0
        if len(r["chosen"]) < len(r["rejected"])
        else 0.5 * (len(r["chosen"]) == len(r["rejected"]))
        for r in rows
    )
    return score / len(rows)


def trl_rows(rows: list[dict], tokenizer) -> list[dict]:
    """TRL's plain-text rows: prefloop's input up to "Assistant: " is the prompt."""
    from rewardtrain.core.model import format_input

    return [
        {
            "prompt": format_input(tokenizer, r["prompt"], ""),
            "chosen": r["chosen"],
            "rejected": r["rejected"],
        }
        for r in rows
    ]


def write_json(data: dict, workdir: Path, name: str) -> str:
    path = workdir / name
    path.write_text(json.dumps(data))
    return str(path)


def split_specs(parts: dict, k: int, cfg, workdir: Path, args) -> dict[str, tuple[str, dict]]:
    """Each variant's trainer and spec for split k (one data file per trainer)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(cfg.backbone)
    ours_data = write_json(parts, workdir, f"ours-{k}.json")
    everything = parts["train"] + parts["validation"]
    trl_data = {"train": trl_rows(everything, tok), "test": trl_rows(parts["test"], tok)}
    trl_file = write_json(trl_data, workdir, f"trl-{k}.json")
    specs = {}
    for name in args.variants.split(","):
        kind, change = VARIANTS[name]
        if kind == "ours":
            config = {**cfg.to_dict(), **change}
            specs[name] = (kind, {"data": ours_data, "config": config, "threads": args.threads})
            continue
        specs[name] = (
            kind,
            {
                "data": trl_file,
                "backbone": cfg.backbone,
                "max_length": cfg.max_length,
                "batch_size": cfg.batch_size,
                "epochs": cfg.epochs,
                "learning_rate": cfg.learning_rate,
                "bf16": None,
                "threads": args.threads,
                "attention": "sdpa",
                "seed": cfg.seed,
                **change,
            },
        )
    return specs


def run_variant(kind: str, spec: dict, smoke: bool) -> dict:
    if smoke:  # in this process, seconds: the figures are printed, not meaningful
        result = (run_ours if kind == "ours" else run_trl)(spec)
        return dict(result, peak_rss_mb=peak_rss_mb())
    return _child(kind, spec)


def summary(results: dict[str, list[dict]], baseline: list[float], whole: float) -> str:
    """Mean (range) over the splits of each variant; the targets against each TRL variant."""
    lines = [
        f"held-out accuracy over {len(baseline)} split(s), mean (range):",
        f"  shorter reply wins: {_spread(baseline, '.3f')} (whole imported file {whole:.3f})",
    ]
    for name, runs in results.items():
        acc = [r["test_accuracy"] for r in runs]
        pps = [r["pairs_per_second"] for r in runs]
        wall = [r["wall_seconds"] for r in runs]
        rss = [r["peak_rss_mb"] for r in runs]
        lines.append(
            f"  {name:14s} acc {_spread(acc, '.3f')}; pairs/s {_spread(pps, '.2f')}; wall "
            f"{_spread(wall, '.0f')} s; peak RSS {_spread(rss, '.0f')} MB; pairs trained "
            f"{runs[0]['pairs_trained']} (first split)"
        )
    ours = results.get("ours")
    for name in (n for n in results if n.startswith("trl") and ours):
        trl = results[name]
        gain = statistics.mean(r["test_accuracy"] for r in ours) - statistics.mean(
            r["test_accuracy"] for r in trl
        )
        ratios = [
            o["pairs_per_second"] / t["pairs_per_second"] for o, t in zip(ours, trl, strict=True)
        ]
        lines.append(
            f"ours vs {name}: accuracy {100 * gain:+.1f} points (target >= +1.0: "
            f"{'met' if gain >= 0.01 else 'NOT met'}); pairs/s x{_spread(ratios, '.2f')} "
            f"(target >= 2: {'met' if min(ratios) >= 2 else 'NOT met'})"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", nargs="?", type=Path, help="HH-RLHF harmless-base/test.jsonl.gz")
    parser.add_argument("--rows", type=int, default=1800, help="the file's first N lines")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument(
        "--test-share",
        type=float,
        default=0.1,
        help="the app's 0.1 by default; larger ones score on more pairs (a forward each, "
        "cheap) and train on fewer; validation stays an eighth of train as in the app. Any "
        "other share than 0.1 makes split 0 a salted one too",
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help=", ".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=0, help="0 = torch's default")
    parser.add_argument("--backbone", default="", help="default: the bundled MiniLM")
    parser.add_argument("--json", help="also write every run's figures to this file")
    parser.add_argument("--smoke", action="store_true", help="seconds: built rows, a tiny BERT")
    args = parser.parse_args()
    if not args.smoke and args.file is None:
        parser.error("give the HH-RLHF file (harmless-base/test.jsonl.gz), or --smoke")
    if not set(args.variants.split(",")) <= set(VARIANTS):
        parser.error(f"--variants: choose among {', '.join(VARIANTS)}")
    return args


def bench_config(args: argparse.Namespace, workdir: Path):
    """The default TrainConfig with its backbone resolved; --smoke: a tiny BERT."""
    from rewardtrain.core.config import TrainConfig
    from rewardtrain.core.model import default_backbone

    if not args.smoke:
        return TrainConfig(backbone=args.backbone or default_backbone())
    from bench.active_learning import make_word_bert

    words = sorted({w.strip(".,;?()").lower() for line in smoke_lines() for w in line.split()})
    backbone = make_word_bert(workdir / "bert", [w for w in words if w])
    return TrainConfig(backbone=backbone, device="cpu", **SMOKE_CONFIG)


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="real-preferences-"))
    if args.smoke:
        args.splits, args.threads, args.test_share = min(args.splits, 2), 1, 0.25
    SHARES.update(test=args.test_share, validation=(1 - args.test_share) / 9)
    lines = smoke_lines() if args.smoke else file_lines(args.file, args.rows)
    rows = import_rows(lines, workdir)
    cfg = bench_config(args, workdir)
    print(
        f"{len(lines)} lines read, {len(rows)} preference rows imported; backbone {cfg.backbone}, "
        f"max_length {cfg.max_length}; cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results: dict[str, list[dict]] = {}
    baseline = []
    # Other shares than the app's: every split is a salted one (1, 2, ...).
    first = 0 if args.test_share == 0.1 else 1
    for k in range(first, first + args.splits):
        parts = split_rows(rows, k)
        baseline.append(shorter_wins(parts["test"]))
        counts = ", ".join(f"{len(v)} {name}" for name, v in parts.items())
        print(f"split {k}: {counts}; shorter reply wins {baseline[-1]:.3f}", flush=True)
        for name, (kind, spec) in split_specs(parts, k, cfg, workdir, args).items():
            result = dict(run_variant(kind, spec, args.smoke), split=k)
            results.setdefault(name, []).append(result)
            print(f"  {name:14s} {_fmt(result)}, wall {result['wall_seconds']:.0f} s", flush=True)
    print(summary(results, baseline, shorter_wins(rows)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
