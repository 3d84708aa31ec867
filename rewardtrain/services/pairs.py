"""Pairs scored by a reward model: the open pairs of a project (the active model's P(A better)
and its uncertainty, read by active learning), and JSONL files of pairs (score_pairs)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from annotate.models import Pair, Project
from rewardtrain import selectors
from rewardtrain.services.versions import scorer_for

# Pairs scored and written per round trip: bounded memory and one bulk UPDATE per chunk.
RESCORE_CHUNK = 500
FILE_CHUNK = 256


class PairsFileError(ValueError):
    """A pairs file that cannot be scored; the message names the line."""


def sigmoid(x: float) -> float:
    # Split by sign so that exp never overflows.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def binary_entropy(p: float) -> float:
    """In bits: 1.0 at p = 0.5, 0.0 when the model is certain."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def rescore_pairs(*, project: Project, device: str = "") -> int:
    """Store the active model's P(A better) = sigma(r_a - r_b) and its binary entropy on each
    open pair of the project; returns how many pairs were scored (0 with no active model)."""
    version = selectors.version_active(project=project)
    if version is None:
        return 0
    scorer = scorer_for(version=version, device=device)
    open_pairs = (
        Pair.objects.filter(project=project, is_open=True)
        .select_related("prompt", "response_a", "response_b")
        .only("id", "prompt__messages", "response_a__text", "response_b__text", "model_p_a")
        .order_by("id")
    )
    scored = 0
    last_id = 0
    while True:
        # Keyset pages: each page is a fresh, short query (no cursor held while scoring).
        chunk = list(open_pairs.filter(id__gt=last_id)[:RESCORE_CHUNK])
        if not chunk:
            return scored
        last_id = chunk[-1].id
        prompts = [p.prompt.messages for p in chunk]
        rewards = scorer.score(
            prompts + prompts,
            [p.response_a.text for p in chunk] + [p.response_b.text for p in chunk],
        )
        for i, pair in enumerate(chunk):
            pair.model_p_a = sigmoid(rewards[i] - rewards[len(chunk) + i])
            pair.model_uncertainty = binary_entropy(pair.model_p_a)
        Pair.objects.bulk_update(chunk, ["model_p_a", "model_uncertainty"])
        scored += len(chunk)


def _sides(row: Any, line: int) -> tuple[Any, str, str]:
    if not isinstance(row, dict):
        raise PairsFileError(f"line {line}: expected a JSON object, got {type(row).__name__}")
    if {"response_a", "response_b"} <= row.keys():
        a, b = row["response_a"], row["response_b"]
    elif {"chosen", "rejected"} <= row.keys():
        a, b = row["chosen"], row["rejected"]
    else:
        raise PairsFileError(
            f"line {line}: needs prompt with response_a and response_b, or chosen and rejected"
        )
    prompt = row.get("prompt")
    prompt_ok = isinstance(prompt, str) or (
        isinstance(prompt, list)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in prompt)
    )
    if not prompt_ok:
        raise PairsFileError(
            f"line {line}: prompt must be a string or a list of {{role, content}} messages"
        )
    if not (isinstance(a, str) and isinstance(b, str)):
        raise PairsFileError(f"line {line}: the two responses must be strings")
    return prompt, a, b


def _read_rows(source: Path) -> Iterator[tuple[int, dict[str, Any], Any, str, str]]:
    with source.open(encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise PairsFileError(f"line {number}: not valid JSON ({exc.msg})") from exc
            yield (number, row, *_sides(row, number))


def _file_scorer(project: Project | None, model_dir: Path | None, device: str) -> Any:
    if model_dir is not None:
        from rewardtrain.model import BackboneError
        from rewardtrain.scoring import RewardScorer

        if not Path(model_dir).is_dir():
            raise PairsFileError(f"model folder not found: {model_dir}")
        try:
            return RewardScorer.load(model_dir, device=device)
        except BackboneError as exc:
            raise PairsFileError(f"cannot load the model in {model_dir}: {exc}") from exc
    if project is None:
        raise PairsFileError("give a project (its active model) or a model folder")
    version = selectors.version_active(project=project)
    if version is None:
        raise PairsFileError(
            f"project {project.slug} has no active model: train one (train_reward_model) "
            "or pass a model folder"
        )
    return scorer_for(version=version, device=device)


def score_pairs_file(
    *,
    source: Path,
    out: Path,
    project: Project | None = None,
    model_dir: Path | None = None,
    device: str = "",
) -> int:
    """Copy each JSONL row of `source` to `out` with reward_a, reward_b and p_a_better added
    (a = response_a, or chosen), scored by `model_dir` or else the project's active model.

    Returns the number of rows. `out` appears only when every row scored: it is written
    beside it under a hidden name and renamed at the end. Raises PairsFileError.
    """
    source, out = Path(source), Path(out)
    if not source.is_file():
        raise PairsFileError(f"file not found: {source}")
    scorer = _file_scorer(project, Path(model_dir) if model_dir else None, device)
    partial = out.with_name(f".{out.name}.partial")
    written = 0
    try:
        with partial.open("w", encoding="utf-8") as f:
            batch: list[tuple[int, dict[str, Any], Any, str, str]] = []
            for item in _read_rows(source):
                batch.append(item)
                if len(batch) >= FILE_CHUNK:
                    written += _score_batch(batch, scorer, f)
                    batch = []
            if batch:
                written += _score_batch(batch, scorer, f)
        os.replace(partial, out)
    finally:
        if partial.exists():
            partial.unlink()
    return written


def _score_batch(batch: list, scorer: Any, f: Any) -> int:
    prompts = [prompt for _, _, prompt, _, _ in batch]
    rewards = scorer.score(prompts + prompts, [a for *_, a, _ in batch] + [b for *_, b in batch])
    n = len(batch)
    for i, (_, row, *_rest) in enumerate(batch):
        reward_a, reward_b = rewards[i], rewards[n + i]
        out = {
            **row,
            "reward_a": reward_a,
            "reward_b": reward_b,
            "p_a_better": sigmoid(reward_a - reward_b),
        }
        f.write(json.dumps(out, ensure_ascii=False) + "\n")
    return n
