"""Validation: the loss and strict accuracy of a model over held-out preference rows, summed
over the whole set (not a mean of batch means), in one process or shared among ranks."""

from __future__ import annotations

import torch
from torch import nn

from rewardtrain.core.data import pair_length
from rewardtrain.core.distributed import SINGLE, Ranks, my_share
from rewardtrain.core.losses import pair_loss
from rewardtrain.core.model import RewardForward
from rewardtrain.core.rankings import validation_sums as group_validation_sums


def to_device(batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def validation_sums(
    forward: nn.Module, encoded: list[dict], collate, *, batch_size: int, device: str, ranks: Ranks
) -> list[float]:
    """[loss sum, correct, decided] of this rank's share of each global validation batch
    (`batch_size` pairs per rank). A rank left without a pair still runs one (uncounted): FSDP
    needs every rank in every forward."""
    was_training = forward.training
    forward.eval()
    order = sorted(range(len(encoded)), key=lambda i: pair_length(encoded[i]))
    total_loss, correct, decided = 0.0, 0, 0
    size = batch_size * ranks.world_size
    with torch.inference_mode():
        for start in range(0, len(order), size):
            mine = my_share(order[start : start + size], ranks)
            batch = to_device(
                collate([encoded[i] for i in mine or order[start : start + 1]]), device
            )
            r = forward(batch["input_ids"], batch["attention_mask"])
            if not mine:
                continue
            if "winners" in batch:  # groups (rankings.py): the loss summed over groups
                loss_sum, right, compared = group_validation_sums(r, batch)
                total_loss += loss_sum
                correct += right
                decided += compared
                continue
            r_c, r_r = r.float().chunk(2)
            total_loss += len(r_c) * pair_loss(r_c, r_r, batch["margins"], batch["targets"]).item()
            correct += int(((r_c > r_r) & ~batch["ties"]).sum())
            decided += int((~batch["ties"]).sum())
    forward.train(was_training)
    return [total_loss, correct, decided]


def validate(model, encoded, collate, cfg, device, bf16) -> tuple[float, float | None]:
    """(loss, strict accuracy on decided pairs) over the whole set, not a mean of batch means."""
    forward = RewardForward(model, bf16=bf16).train(model.training)
    loss, correct, decided = validation_sums(
        forward, encoded, collate, batch_size=cfg.eval_batch_size, device=device, ranks=SINGLE
    )
    return loss / len(encoded), (correct / decided if decided else None)
