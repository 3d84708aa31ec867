"""Pairs scored by a reward model: the open pairs of a project (the active model's P(A better)
and its uncertainty, read by active learning), and files of pairs in any shape the import
reads (score_pairs)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from annotate.errors import ApplicationError
from annotate.importers import candidates
from annotate.importers.base import RowInvalid
from annotate.importers.detect import Importer, detect, known_shapes
from annotate.importers.readers import read_rows
from annotate.models import Pair, Project
from rewardtrain.core.uncertainty import pair_view, sigmoid
from rewardtrain.selectors import runs as selectors
from rewardtrain.services.versions import scorer_for

# Pairs scored and written per round trip: bounded memory and one bulk UPDATE per chunk.
RESCORE_CHUNK = 500
FILE_CHUNK = 512  # responses scored per call on a file
# Bad lines of a file named in the error, as the import lists them; the count covers them all.
MAX_ERRORS_LISTED = 1000
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


@dataclass
class _FileRow:
    """One row of a pairs file: as read (written back with the rewards added), its prompt,
    and the responses to score, in the order their rewards are written."""

    data: dict[str, Any]
    prompt: list[dict[str, str]]
    texts: list[str]
    candidates: bool  # a candidates row: one reward per item of its `responses`


def _file_row(importer: Importer, data: dict[str, Any]) -> _FileRow:
    """A row read by the import's own parser (RowInvalid as the import raises it)."""
    parsed = importer.parse(data)
    if importer.NAME == candidates.NAME:
        return _FileRow(data, parsed.prompt, candidates.response_texts(data), True)
    # Every other shape holds one pair; its first candidate is the chosen (or preferred, or
    # response_a, or left) side, whose reward is reward_a. The two sides' texts are what the
    # import stores: where two conversations part before their last reply, each side's own
    # later turns, so each side is scored on the conversation it followed.
    (spec,) = parsed.pairs
    return _FileRow(data, parsed.prompt, [spec.first.text, spec.second.text], False)


@dataclass
class _BadLines:
    """The bad lines of a file, as the import lists them: the first MAX_ERRORS_LISTED, all
    counted."""

    listed: list[tuple[int, str]] = field(default_factory=list)
    count: int = 0

    def add(self, line: int, message: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_ERRORS_LISTED:
            self.listed.append((line, message))

    def error(self) -> PairsFileError:
        plural = "s" if self.count != 1 else ""
        listed = (
            f" (the first {len(self.listed):,} are listed)" if self.count > len(self.listed) else ""
        )
        lines = "".join(f"\nline {line}: {message}" for line, message in self.listed)
        return PairsFileError(
            f"{self.count:,} bad line{plural}{listed}; nothing was written:{lines}"
        )


def _read_rows(source: Path, bad: _BadLines) -> Iterator[_FileRow]:
    """The file's rows, read and told apart as import_pairs reads them (the same readers, and
    the shape told from the first row, then held for every row). Bad lines go to `bad`; after
    the first one no more rows are yielded, but the file is read to its end to name them all."""
    importer: Importer | None = None
    try:
        for raw in read_rows(source):
            if raw.data is None:
                bad.add(raw.line, raw.error)
                continue
            if importer is None:
                importer = detect(raw.data)
                if importer is None:
                    keys = ", ".join(sorted(map(str, raw.data))) or "none"
                    raise PairsFileError(
                        f"Unrecognised shape: line {raw.line} has the fields {keys}. "
                        f"Known shapes:\n{known_shapes()}"
                    )
            try:
                row = _file_row(importer, raw.data)
            except RowInvalid as exc:
                bad.add(raw.line, str(exc))
                continue
            if not bad.count:
                yield row
    except UnicodeDecodeError:
        raise PairsFileError("The file is not UTF-8 text; nothing was written.") from None


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
    aspects: bool = False,
) -> int:
    """Copy each row of `source` to `out` (JSON Lines) with its rewards added, scored by
    `model_dir` or else the project's active model.

    `source` is any file import_pairs reads (every shape, JSON Lines, CSV, a JSON array,
    gzip). A row of one pair gets reward_a (its chosen, preferred, response_a or left side),
    reward_b and p_a_better; a candidates row gets `rewards`, one per item of its `responses`.
    With `aspects`, from a model trained with an aspect head, a pair row also gets aspects_a
    and aspects_b, a candidates row `aspects`: {aspect: prediction on its scale} per response
    (PairsFileError from a model without one). Returns the number of rows. `out` appears only when every row scored: it is written
    beside it under a hidden name and renamed at the end. Raises PairsFileError, naming every
    bad line as the import does.
    """
    source, out = Path(source), Path(out)
    if not source.is_file():
        raise PairsFileError(f"file not found: {source}")
    scorer = _file_scorer(project, Path(model_dir) if model_dir else None, device)
    if aspects and not getattr(scorer, "aspects", None):
        raise PairsFileError(
            "this model has no aspect head (it was trained without ratings): it gives the "
            "reward alone; leave out --aspects or train on rated responses"
        )
    partial = out.with_name(f".{out.name}.partial")
    written = 0
    bad = _BadLines()
    try:
        with partial.open("w", encoding="utf-8") as f:
            batch: list[_FileRow] = []
            responses = 0
            for row in _read_rows(source, bad):
                batch.append(row)
                responses += len(row.texts)
                if responses >= FILE_CHUNK:
                    written += _score_batch(batch, scorer, f, aspects)
                    batch, responses = [], 0
            if bad.count:
                raise bad.error()
            if batch:
                written += _score_batch(batch, scorer, f, aspects)
        os.replace(partial, out)
    finally:
        if partial.exists():
            partial.unlink()
    return written


def _score_batch(batch: list[_FileRow], scorer: Any, f: Any, aspects: bool = False) -> int:
    prompts = [row.prompt for row in batch for _ in row.texts]
    texts = [text for row in batch for text in row.texts]
    if aspects:
        scored = scorer.score_aspects(prompts, texts)
        rewards = iter([s["reward"] for s in scored])
        by_aspect = iter([s["aspects"] for s in scored])
    else:
        rewards = iter(scorer.score(prompts, texts))
    for row in batch:
        values = [next(rewards) for _ in row.texts]
        if row.candidates:
            added: dict[str, Any] = {"rewards": values}
        else:
            reward_a, reward_b = values
            added = {
                "reward_a": reward_a,
                "reward_b": reward_b,
                "p_a_better": sigmoid(reward_a - reward_b),
            }
        if aspects:
            predicted = [next(by_aspect) for _ in row.texts]
            if row.candidates:
                added["aspects"] = predicted
            else:
                added["aspects_a"], added["aspects_b"] = predicted
        f.write(json.dumps({**row.data, **added}, ensure_ascii=False) + "\n")
    return len(batch)
