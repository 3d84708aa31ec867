"""Projects with judged pairs that a tiny backbone can learn from: the chosen response says
"good", the rejected one "bad" (words of tests/rewardtrain/tiny.py's vocabulary)."""

from __future__ import annotations

from annotate.models import Comparison, Pair, Project
from tests.factories import make_pair

# Short inputs: the tiny backbones have 128 positions.
TINY_TRAINING = {"max_length": 48, "epochs": 1, "batch_size": 8, "seed": 0}


def use_tiny_backbone(project: Project, backbone: str, **config) -> Project:
    project.reward_backbone = backbone
    project.training_config = {**TINY_TRAINING, **config}
    project.save(update_fields=["reward_backbone", "training_config"])
    return project


def add_judged_pairs(project: Project, labeler, count: int, start: int = 0) -> list[Pair]:
    """`count` prompts with one pair each; the labeler prefers the "good" response, which is
    response_a on even prompts and response_b on odd ones."""
    pairs = []
    for i in range(start, start + count):
        words = f"w{i % 60} w{(7 * i) % 60} w{(13 * i + 5) % 60}"
        good, bad = f"good w{i % 60} good", f"bad w{(3 * i) % 60} bad"
        a, b = (good, bad) if i % 2 == 0 else (bad, good)
        pair = make_pair(project, f"{words} number {i}", a=a, b=b)
        Comparison.objects.create(
            pair=pair,
            project=project,
            labeler=labeler,
            choice="a" if i % 2 == 0 else "b",
            left="a",
        )
        pairs.append(pair)
    Project.objects.filter(pk=project.pk).update(
        comparison_count=Comparison.objects.filter(project=project).count()
    )
    return pairs
