"""Rankings, ratings and pairs as one kind of batch element, InstructGPT's grouping.

A batch element ("group") is the distinct responses of one judgment, each forwarded once per
step, with the comparisons between them and, for rated responses, their per-aspect targets:
- a pair row ({"prompt", "chosen", "rejected", ...}, data.py's) is a group of two with one
  comparison, its target and margin exactly as the pairwise collator gives them;
- a ranking row ({"prompt", "ranking": [[best, ...], [next, ...], ...]}: tie groups of response
  texts, best first) is a group of K with every implied comparison: each response beats every
  response in a later tie group (target 1, no margin). Responses tied in one tie group follow
  the tie rule of pairs (config.tie_loss): "soft" gives each two of them a 0.5-target
  comparison, "drop" none;
- a rating row ({"prompt", "response", "ratings": {aspect: value}}) is a group of one whose
  targets are its normalised ratings (aspects.py).

A group's loss is the mean of -(t log sigma(d) + (1 - t) log sigma(-d)) over its comparisons
(InstructGPT's 1/C(K,2) normalisation; d = r_w - r_l - margin on the scalar reward), plus the
mean squared error over its rated aspects; the batch loss is the mean over groups. A batch of
pairs alone thus gets losses.pair_loss's number, and its rows are laid out as the pairwise
collator lays them out (every group's first response, then every second one, ...).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import torch
import torch.nn.functional as F

from rewardtrain.core.aspects import Aspect, rating_targets
from rewardtrain.core.model import encode_many
from rewardtrain.core.padding import pad_sequences


class RankingError(ValueError):
    """A ranking row that does not describe an order of distinct responses."""


def is_pair(row: dict[str, Any]) -> bool:
    return "chosen" in row and "rejected" in row


def is_ranking(row: dict[str, Any]) -> bool:
    return "ranking" in row


def check_ranking(ranking: Any) -> list[list[str]]:
    """The ranking's tie groups, or RankingError naming what is wrong: it must hold at least
    two responses in non-empty tie groups, none of them twice."""
    if not isinstance(ranking, list | tuple) or not all(
        isinstance(g, list | tuple) and g for g in ranking
    ):
        raise RankingError("a ranking is a list of non-empty tie groups (lists of responses)")
    texts = [text for group in ranking for text in group]
    if len(texts) < 2:
        raise RankingError(f"a ranking needs at least 2 responses, got {len(texts)}")
    if not all(isinstance(t, str) for t in texts):
        raise RankingError("a ranking's responses are texts")
    repeated = sorted({t for t in texts if texts.count(t) > 1})
    if repeated:
        raise RankingError(f"a ranking names a response twice: {repeated[0][:60]!r}")
    return [list(group) for group in ranking]


def implied_pairs(ranking: list[list[str]], tie_loss: str) -> list[tuple[int, int, bool]]:
    """(winner, loser, tie) indices into the ranking's responses in reading order (tie groups
    flattened, best first): each response against every one in a later group, and with the
    "soft" tie rule each two responses of one group (a tie, either way round)."""
    group_of = [g for g, group in enumerate(ranking) for _ in group]
    out = []
    for i, j in combinations(range(len(group_of)), 2):
        if group_of[i] < group_of[j]:
            out.append((i, j, False))
        elif tie_loss == "soft":
            out.append((i, j, True))
    return out


def ranking_pair_rows(row: dict[str, Any], tie_loss: str = "soft") -> list[dict[str, Any]]:
    """A ranking row as the pair rows it implies (for evaluation and pair exports): TRL's keys,
    ties marked, the row's other keys (prompt_key, ...) carried over."""
    ranking = check_ranking(row["ranking"])
    texts = [t for group in ranking for t in group]
    rest = {k: v for k, v in row.items() if k != "ranking"}
    return [
        {**rest, "chosen": texts[w], "rejected": texts[loser], "tie": tie, "p_chosen": 1.0}
        for w, loser, tie in implied_pairs(ranking, tie_loss)
    ]


def is_tie(row: dict[str, Any]) -> bool:
    """A row with no decided comparison: a tie pair, or a ranking of one tie group. With
    tie_loss "drop" such rows are left out of training (and counted)."""
    if is_ranking(row):
        return len(row["ranking"]) == 1
    return bool(row.get("tie"))


def needs_groups(rows: list[dict[str, Any]], aspects: list[Aspect]) -> bool:
    """Whether a run needs the grouped batches: any ranking or rating row, or an aspect head
    (whose scalar reward is the aspects' weighted sum). Pairs alone keep data.PairCollator."""
    return bool(aspects) or not all(is_pair(r) for r in rows)


def encode_groups(
    rows: list[dict[str, Any]],
    tokenizer: Any,
    max_length: int,
    *,
    tie_loss: str,
    aspects: list[Aspect],
    use_soft_labels: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """(group items, number of groups with a truncated input). Every response of every row is
    tokenized in one call; a group item holds its responses' ids once each, its comparisons
    as (winner, loser, target, strength, tie) and its responses' rating targets."""
    plans = [_plan(row, tie_loss, aspects, use_soft_labels) for row in rows]
    prompts = [row["prompt"] for row, plan in zip(rows, plans, strict=True) for _ in plan[0]]
    texts = [text for plan in plans for text in plan[0]]
    encoded = encode_many(tokenizer, prompts, texts, max_length) if texts else []
    items, truncated, at = [], 0, 0
    for texts_of, comparisons, ratings in plans:
        mine = encoded[at : at + len(texts_of)]
        at += len(texts_of)
        truncated += int(any(e.truncated for e in mine))
        items.append(
            {"sequences": [e.ids for e in mine], "comparisons": comparisons, "ratings": ratings}
        )
    return items, truncated


def _plan(
    row: dict[str, Any], tie_loss: str, aspects: list[Aspect], use_soft_labels: bool
) -> tuple[list[str], list[tuple], list[list[float]] | None]:
    """(the row's responses, its comparisons, their rating targets or None)."""
    if is_pair(row):
        tie = bool(row.get("tie", False))
        share = row.get("p_chosen")
        share = 1.0 if share is None or not use_soft_labels else float(share)
        target = 0.5 if tie else share
        strength = 0.0 if tie else float(row.get("strength") or 0.0)
        return [row["chosen"], row["rejected"]], [(0, 1, target, strength, tie)], None
    if is_ranking(row):
        ranking = check_ranking(row["ranking"])
        texts = [t for group in ranking for t in group]
        comparisons = [
            (w, loser, 0.5 if tie else 1.0, 0.0, tie)
            for w, loser, tie in implied_pairs(ranking, tie_loss)
        ]
        return texts, comparisons, None
    if "response" in row and "ratings" in row:
        return [row["response"]], [], [rating_targets(row["ratings"], aspects)]
    raise ValueError(
        "a training row is a pair (chosen, rejected), a ranking (ranking) or a rating "
        f"(response, ratings); got keys {sorted(row)}"
    )


def group_length(item: dict[str, Any]) -> int:
    """The widest of a group's inputs: what its batch is padded to."""
    return max(len(s) for s in item["sequences"])


class GroupCollator:
    """Pads every response of B groups into one [N, T] batch (N = the groups' responses, each
    once), laid out by position: every group's first response, then every second one, ...
    (for pairs: rows 0..B-1 chosen, B..2B-1 rejected, as PairCollator). Beside it, per
    comparison: `winners`, `losers` (rows), `margins` (margin_scale * strength, 0 for ties),
    `targets`, `ties`, `pair_group` (its group); per rated response: `rated_rows`,
    `rating_targets`, `rating_mask`, `rated_group`; and `aspect_weights` (empty: the reward is
    the model's single output)."""

    def __init__(
        self,
        pad_token_id: int,
        *,
        margin_scale: float = 0.0,
        aspects: list[Aspect] | None = None,
        padding_side: str = "right",
        pad_to_multiple_of: int | None = None,
    ) -> None:
        self.pad_token_id = pad_token_id
        self.margin_scale = margin_scale
        self.weights = [a.weight for a in aspects or []]
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        row_of: dict[tuple[int, int], int] = {}
        sequences: list[list[int]] = []
        for position in range(max(len(it["sequences"]) for it in items)):
            for g, item in enumerate(items):
                if position < len(item["sequences"]):
                    row_of[g, position] = len(sequences)
                    sequences.append(item["sequences"][position])
        batch = self._pad(sequences)
        comparisons = [(g, c) for g, item in enumerate(items) for c in item["comparisons"]]
        batch["winners"] = torch.tensor([row_of[g, c[0]] for g, c in comparisons], dtype=torch.long)
        batch["losers"] = torch.tensor([row_of[g, c[1]] for g, c in comparisons], dtype=torch.long)
        batch["targets"] = torch.tensor([c[2] for _, c in comparisons], dtype=torch.float32)
        batch["margins"] = self.margin_scale * torch.tensor(
            [c[3] for _, c in comparisons], dtype=torch.float32
        )
        batch["ties"] = torch.tensor([c[4] for _, c in comparisons], dtype=torch.bool)
        batch["pair_group"] = torch.tensor([g for g, _ in comparisons], dtype=torch.long)
        rated = [
            (g, p, targets)
            for g, item in enumerate(items)
            for p, targets in enumerate(item["ratings"] or [])
        ]
        width = len(self.weights)
        values = torch.tensor([t for _, _, t in rated], dtype=torch.float32)
        values = values.reshape(len(rated), width)
        batch["rated_rows"] = torch.tensor([row_of[g, p] for g, p, _ in rated], dtype=torch.long)
        batch["rating_mask"] = ~torch.isnan(values)
        batch["rating_targets"] = torch.nan_to_num(values)
        batch["rated_group"] = torch.tensor([g for g, _, _ in rated], dtype=torch.long)
        batch["aspect_weights"] = torch.tensor(self.weights, dtype=torch.float32)
        batch["groups"] = torch.tensor(len(items), dtype=torch.long)
        return batch

    def _pad(self, sequences: list[list[int]]) -> dict[str, torch.Tensor]:
        return pad_sequences(
            sequences,
            self.pad_token_id,
            padding_side=self.padding_side,
            pad_to_multiple_of=self.pad_to_multiple_of,
        )


def scalar_rewards(r: torch.Tensor, aspect_weights: torch.Tensor) -> torch.Tensor:
    """The scalar reward of each row: the model's one output, or the weighted sum of its
    aspect outputs."""
    r = r.float()
    if r.dim() == 1:
        return r
    return r @ aspect_weights.to(r.device, torch.float32)


def group_losses(
    r: torch.Tensor, batch: dict[str, torch.Tensor], center_coefficient: float = 0.0
) -> torch.Tensor:
    """Each group's loss (see the module docstring), float32, from the batch's rewards ([N] or,
    with aspects, [N, A])."""
    groups = int(batch["groups"])
    scalar = scalar_rewards(r, batch["aspect_weights"])
    out = torch.zeros(groups, dtype=torch.float32, device=scalar.device)
    if len(batch["winners"]):
        r_w, r_l = scalar[batch["winners"]], scalar[batch["losers"]]
        delta = r_w - r_l - batch["margins"]
        t = batch["targets"]
        losses = -(t * F.logsigmoid(delta) + (1 - t) * F.logsigmoid(-delta))
        if center_coefficient:
            losses = losses + center_coefficient * (r_w + r_l) ** 2
        out = out + _group_mean(losses, batch["pair_group"], groups)
    if len(batch["rated_rows"]):
        mask = batch["rating_mask"].float()
        errors = (r.float()[batch["rated_rows"]] - batch["rating_targets"]) ** 2 * mask
        per_response = errors.sum(-1) / mask.sum(-1).clamp(min=1.0)
        out = out + _group_mean(per_response, batch["rated_group"], groups)
    return out


def _group_mean(values: torch.Tensor, group: torch.Tensor, groups: int) -> torch.Tensor:
    """The mean of each group's values (0 for a group without any)."""
    sums = torch.zeros(groups, dtype=values.dtype, device=values.device).index_add(0, group, values)
    counts = torch.zeros(groups, dtype=values.dtype, device=values.device).index_add(
        0, group, torch.ones_like(values)
    )
    return sums / counts.clamp(min=1.0)


def group_loss(
    r: torch.Tensor, batch: dict[str, torch.Tensor], center_coefficient: float = 0.0
) -> torch.Tensor:
    """The batch's loss: the mean over its groups."""
    return group_losses(r, batch, center_coefficient).mean()


def validation_sums(r: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[float, int, int]:
    """(sum of the groups' losses, correct, decided comparisons) of one validation batch:
    accuracy over the implied decided comparisons on the scalar reward."""
    loss_sum = float(group_losses(r, batch).sum())
    scalar = scalar_rewards(r, batch["aspect_weights"])
    decided = ~batch["ties"]
    right = (scalar[batch["winners"]] > scalar[batch["losers"]]) & decided
    return loss_sum, int(right.sum()), int(decided.sum())
