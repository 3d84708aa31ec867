"""Rewards from a trained model, for evaluation, active learning and the score_pairs command."""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from rewardtrain.model import encode_many, rewards


class RewardScorer:
    """Scores (prompt, response) inputs with a reward model, in float32, in eval mode.

    Inputs are batched by length (little padding) and the rewards returned in input order.
    """

    def __init__(self, model: Any, tokenizer: Any, device: str = "", max_length: int = 512):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "") -> RewardScorer:
        """A folder written by training.save_model."""
        from rewardtrain.model import load_backbone

        model, tokenizer = load_backbone(str(path))
        max_length = 512
        meta_path = os.path.join(path, "prefloop.json")
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                max_length = json.load(f).get("max_length", max_length)
        return cls(model, tokenizer, device, max_length)

    @torch.inference_mode()
    def score(self, prompts: list[Any], responses: list[str], batch_size: int = 64) -> list[float]:
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses differ in length")
        if not responses:
            return []
        encoded = encode_many(self.tokenizer, prompts, responses, self.max_length)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))
        out = [0.0] * len(encoded)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encoded[i].ids) for i in chunk)
            ids = torch.full((len(chunk), width), self.tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(chunk):
                n = len(encoded[i].ids)
                ids[row, :n] = torch.tensor(encoded[i].ids)
                mask[row, :n] = 1
            values = rewards(self.model, ids.to(self.device), mask.to(self.device))
            for i, v in zip(chunk, values.tolist(), strict=True):
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
