"""The training loss of a batch of pairs, with the noise-robust options of TrainConfig.

With delta = r_chosen - r_rejected - margin and target t = P(chosen is better) (1 for a hard
label, the aggregation's posterior with soft labels, 0.5 for a tie):
- "bradley_terry": -(t log sigma(delta) + (1 - t) log sigma(-delta)), the plain loss;
- "gce": the generalized cross-entropy of Zhang & Sabuncu (2018), (1 - p^q) / q on the
  probability p the model gives the labelled direction, t-weighted over both directions.
  q -> 0 is Bradley-Terry; q = 1 is the bounded MAE loss, which a flipped label cannot pull
  without limit (Ghosh et al. 2017), at the price of slower learning; q = 0.7 is the paper's.
Label smoothing moves t toward 0.5 by `label_smoothing` (t' = t (1 - e) + e / 2), as
conservative DPO does for flipped preferences.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("bradley_terry", "gce")
GCE_Q = 0.7


def smoothed(targets: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    return targets * (1.0 - label_smoothing) + 0.5 * label_smoothing


def pair_losses(delta: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-pair losses of float32 reward differences against targets."""
    if loss == "gce":
        forward = (1.0 - torch.exp(GCE_Q * F.logsigmoid(delta))) / GCE_Q
        backward = (1.0 - torch.exp(GCE_Q * F.logsigmoid(-delta))) / GCE_Q
        return targets * forward + (1.0 - targets) * backward
    return -(targets * F.logsigmoid(delta) + (1.0 - targets) * F.logsigmoid(-delta))


def training_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    batch: dict[str, torch.Tensor],
    *,
    loss: str = "bradley_terry",
    label_smoothing: float = 0.0,
    center_coefficient: float = 0.0,
) -> torch.Tensor:
    """Mean loss of a batch (its "margins" and "targets"), in float32, plus reward centring."""
    r_chosen, r_rejected = r_chosen.float(), r_rejected.float()
    delta = r_chosen - r_rejected - batch["margins"]
    targets = smoothed(batch["targets"], label_smoothing)
    value = pair_losses(delta, targets, loss).mean()
    if center_coefficient:
        value = value + center_coefficient * ((r_chosen + r_rejected) ** 2).mean()
    return value
