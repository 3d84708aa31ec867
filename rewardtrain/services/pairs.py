"""Pairs scored by a reward model: the open pairs of a project (the active model's P(A better)
and its uncertainty, read by active learning), and JSONL files of pairs (score_pairs)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

from annotate.errors import ApplicationError
from annotate.models import Pair, Project
from rewardtrain.core.uncertainty import pair_view, sigmoid
from rewardtrain.selectors import runs as selectors
from rewardtrain.services.versions import scorer_for

# Pairs scored and written per round trip: bounded memory and one bulk UPDATE per chunk.
RESCORE_CHUNK = 500
FILE_CHUNK = 256
# Where a version trained as an ensemble keeps its extra members, inside its own folder.
MEMBERS_DIR = "members"


class PairsFileError(ApplicationError, ValueError):
    """A pairs file that cannot be scored; the message names the line."""

    status = HTTPStatus.BAD_REQUEST
    code = "pairs_file_invalid"


def ensemble_paths(path: str | Path) -> list[Path]:
    """The folders of a version's models: the version's own, then its extra ensemble members
    in `<version>/members/<k>/` (k = 1 .. K-1), when it was trained as an ensemble."""
    root = Path(path)
    members = root / MEMBERS_DIR
    extra = (
        sorted((p for p in members.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        if members.is_dir()
        else []
    )
    return [root, *extra]


def _ensemble_scorers(version: Any, device: str) -> list[Any]:
    from rewardtrain.core.scoring import RewardScorer

    extra = ensemble_paths(version.path)[1:]
    return [scorer_for(version=version, device=device)] + [
        RewardScorer.load(p, device=device) for p in extra
    ]


def rescore_pairs(*, project: Project, device: str = "", unscored_only: bool = False) -> int:
    """Store the active model's view on each open pair and queue it by that view; returns how
    many pairs were scored (0 with no active model).

    model_p_a is P(A better) = sigma(r_a - r_b); model_uncertainty is its binary entropy, or,
    for a version trained as an ensemble, the spread of r_a - r_b across the members
    (rewardtrain/core/uncertainty.py); priority, the order the queue serves in, becomes that
    uncertainty. Prompts with many candidates first get the pairings of neighbours in reward
    order (annotate.services.selection). `unscored_only` scores only pairs never scored (new
    imports), leaving the rest as the last promotion scored them.
    """
    from annotate.services.selection import pairs_add_by_reward

    version = selectors.version_active(project=project)
    if version is None:
        return 0
    scorers = _ensemble_scorers(version, device)
    pairs_add_by_reward(project=project, scorer=scorers[0])
    open_pairs = (
        Pair.objects.filter(project=project, is_open=True)
        .select_related("prompt", "response_a", "response_b")
        .only("id", "prompt__messages", "response_a__text", "response_b__text", "model_p_a")
        .order_by("id")
    )
    if unscored_only:
        open_pairs = open_pairs.filter(model_p_a__isnull=True)
    scored = 0
    last_id = 0
    while True:
        # Keyset pages: each page is a fresh, short query (no cursor held while scoring).
        chunk = list(open_pairs.filter(id__gt=last_id)[:RESCORE_CHUNK])
        if not chunk:
            return scored
        last_id = chunk[-1].id
        prompts = [p.prompt.messages for p in chunk]
        texts = [p.response_a.text for p in chunk] + [p.response_b.text for p in chunk]
        n = len(chunk)
        deltas = [[] for _ in chunk]
        for scorer in scorers:
            rewards = scorer.score(prompts + prompts, texts)
            for i in range(n):
                deltas[i].append(rewards[i] - rewards[n + i])
        for pair, pair_deltas in zip(chunk, deltas, strict=True):
            pair.model_p_a, pair.model_uncertainty = pair_view(pair_deltas)
            pair.priority = pair.model_uncertainty
        Pair.objects.bulk_update(chunk, ["model_p_a", "model_uncertainty", "priority"])
        scored += n


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
        from rewardtrain.core.model import BackboneError
        from rewardtrain.core.scoring import RewardScorer

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
