"""Rewards from a trained model, for evaluation, active learning and the score_pairs command."""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from rewardtrain.core.aspects import Aspect, parse_aspects, scalar_reward
from rewardtrain.core.model import encode_many, rewards, tokenize_uncut


class RewardScorer:
    """Scores (prompt, response) inputs with a reward model, in float32, in eval mode.

    Inputs are batched by length (little padding) and the rewards returned in input order.
    With `aspects` (a model with one output per rated aspect) the reward is their weighted sum,
    and score_aspects() gives each aspect too.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        device: str = "",
        max_length: int = 512,
        aspects: list[Aspect] | None = None,
    ):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.aspects = list(aspects or [])

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "") -> RewardScorer:
        """A folder written by training.save_model."""
        from rewardtrain.core.model import load_backbone

        meta: dict[str, Any] = {}
        meta_path = os.path.join(path, "prefloop.json")
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
        aspects = parse_aspects(meta.get("aspects") or [])
        model, tokenizer = load_backbone(str(path), num_labels=len(aspects) or 1)
        return cls(model, tokenizer, device, meta.get("max_length", 512), aspects)

    def encode(self, prompts: list[Any], responses: list[str]) -> list[list[int]]:
        """Token ids of each (prompt, response), formatted and cut as in training."""
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses differ in length")
        if not responses:
            return []
        return [e.ids for e in encode_many(self.tokenizer, prompts, responses, self.max_length)]

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        """Token ids of texts scored as given (already formatted by the caller, such as an RL
        trainer's rendered query), with the tokenizer's special tokens as in training; too-long
        texts lose their start, as a too-long response does in training."""
        if not texts:
            return []
        enc = tokenize_uncut(self.tokenizer, texts)
        special = set(self.tokenizer.all_special_ids)
        out = []
        for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
            ids = list(ids)
            if len(ids) > self.max_length:
                # Leading special tokens ([CLS], BOS) stay, as encode_many keeps them.
                lead = 0
                while lead < len(ids) and ids[lead] in special and tuple(offsets[lead]) == (0, 0):
                    lead += 1
                keep = max(self.max_length - lead, 1)
                ids = (ids[:lead] + ids[lead:][-keep:])[-self.max_length :]
            out.append(ids)
        return out

    def score_ids(self, rows: list[list[int]]) -> list[float]:
        """Rewards of token-id rows in one padded forward (callers group rows of similar
        length: the padding is the widest row's)."""
        outputs = self.outputs_ids(rows)
        if not self.aspects:
            return outputs
        return [scalar_reward(o, self.aspects) for o in outputs]

    @torch.inference_mode()
    def outputs_ids(self, rows: list[list[int]]) -> list[Any]:
        """The model's outputs for token-id rows: one float each, or with aspects one list of
        normalised aspect outputs each."""
        if not rows:
            return []
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return rewards(self.model, ids.to(self.device), mask.to(self.device)).tolist()

    def score(self, prompts: list[Any], responses: list[str], batch_size: int = 64) -> list[float]:
        return self._by_length(self.score_ids, prompts, responses, batch_size)

    def score_aspects(
        self, prompts: list[Any], responses: list[str], batch_size: int = 64
    ) -> list[dict[str, Any]]:
        """Per input {"reward": the scalar, "aspects": {name: prediction on the aspect's own
        scale}}; a model without aspects answers "aspects": {}."""
        outputs = self._by_length(self.outputs_ids, prompts, responses, batch_size)
        if not self.aspects:
            return [{"reward": o, "aspects": {}} for o in outputs]
        return [
            {
                "reward": scalar_reward(o, self.aspects),
                "aspects": {a.name: a.on_scale(v) for a, v in zip(self.aspects, o, strict=True)},
            }
            for o in outputs
        ]

    def _by_length(self, fn, prompts: list[Any], responses: list[str], batch_size: int) -> list:
        """fn over the encoded inputs in batches of similar length, in input order."""
        encoded = self.encode(prompts, responses)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out: list[Any] = [0.0] * len(encoded)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            values = fn([encoded[i] for i in chunk])
            for i, v in zip(chunk, values, strict=True):
                out[i] = v
        return out

    def score_pairs(
        self, rows: list[dict[str, Any]], batch_size: int = 64
    ) -> tuple[list[float], list[float]]:
        """(rewards of chosen, rewards of rejected) for rows with prompt/chosen/rejected."""
        prompts = [r["prompt"] for r in rows]
        both = self.score(
            prompts + prompts,
            [r["chosen"] for r in rows] + [r["rejected"] for r in rows],
            batch_size,
        )
        return both[: len(rows)], both[len(rows) :]

    def score_pairs_aspects(
        self, rows: list[dict[str, Any]], batch_size: int = 64
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """score_aspects() of each row's chosen and of its rejected response: what
        score_pairs answers when asked for the aspects."""
        prompts = [r["prompt"] for r in rows]
        both = self.score_aspects(
            prompts + prompts,
            [r["chosen"] for r in rows] + [r["rejected"] for r in rows],
            batch_size,
        )
        return both[: len(rows)], both[len(rows) :]
