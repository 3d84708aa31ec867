"""The reward model's losses on preference rows.

Loss per pair, with delta = r_chosen - r_rejected - margin and target t:
    -(t * log sigma(delta) + (1 - t) * log sigma(-delta))
t = 1 is the plain Bradley-Terry loss -log sigma(r_c - r_r - m). Ties use a soft target of
0.5 (and no margin): the loss is smallest when both rewards are equal, it needs no extra
parameter (Rao-Kupper's theta or Davidson's nu would have to be fitted and would change the
decided pairs' probabilities too), and the evaluation's sigma(delta) keeps one meaning.
With soft labels t is the chosen response's vote share.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rewardtrain.core.config import TrainConfig
from rewardtrain.core.rankings import group_loss


def batch_loss(r: torch.Tensor, batch: dict[str, torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    """The training loss of one collated batch from its rewards (chosen rows first)."""
    if "winners" in batch:  # groups: rankings, ratings, pairs among them (rankings.py)
        return group_loss(r, batch, cfg.center_rewards_coefficient)
    r_chosen, r_rejected = r.float().chunk(2)
    return pair_loss(
        r_chosen, r_rejected, batch["margins"], batch["targets"], cfg.center_rewards_coefficient
    )


def pair_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    margins: torch.Tensor,
    targets: torch.Tensor,
    center_coefficient: float = 0.0,
) -> torch.Tensor:
    """Mean loss of a batch of pairs (see the module docstring), in float32."""
    delta = r_chosen.float() - r_rejected.float() - margins
    losses = -(targets * F.logsigmoid(delta) + (1 - targets) * F.logsigmoid(-delta))
    loss = losses.mean()
    if center_coefficient:
        loss = loss + center_coefficient * ((r_chosen.float() + r_rejected.float()) ** 2).mean()
    return loss
