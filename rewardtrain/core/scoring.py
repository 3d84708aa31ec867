"""Rewards from a trained model, for evaluation, active learning and the score_pairs command."""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from rewardtrain.core.model import encode_many, rewards, tokenize_uncut


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
        from rewardtrain.core.model import load_backbone

        model, tokenizer = load_backbone(str(path))
        max_length = 512
        meta_path = os.path.join(path, "prefloop.json")
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                max_length = json.load(f).get("max_length", max_length)
        return cls(model, tokenizer, device, max_length)

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

    @torch.inference_mode()
    def score_ids(self, rows: list[list[int]]) -> list[float]:
        """Rewards of token-id rows in one padded forward (callers group rows of similar
        length: the padding is the widest row's)."""
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
        encoded = self.encode(prompts, responses)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = [0.0] * len(encoded)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            values = self.score_ids([encoded[i] for i in chunk])
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
