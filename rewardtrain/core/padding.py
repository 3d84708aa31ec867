"""Token id lists padded into one batch: the pairs' collator and the groups' collator share it."""

from __future__ import annotations

import torch


def pad_sequences(
    sequences: list[list[int]],
    pad_token_id: int,
    *,
    padding_side: str = "right",
    pad_to_multiple_of: int | None = None,
) -> dict[str, torch.Tensor]:
    """{input_ids, attention_mask}: [len(sequences), T], T the longest sequence (rounded up to
    pad_to_multiple_of), padded on `padding_side`."""
    width = max(len(s) for s in sequences)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        cols = slice(0, len(seq)) if padding_side == "right" else slice(width - len(seq), width)
        input_ids[row, cols] = torch.tensor(seq, dtype=torch.long)
        attention_mask[row, cols] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
