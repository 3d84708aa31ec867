"""The training loss options (rewardtrain/losses.py) against literal values, and the config
that selects them."""

import math

import pytest
import torch

from rewardtrain.config import ConfigError, TrainConfig
from rewardtrain.losses import GCE_Q, pair_losses, smoothed, training_loss
from rewardtrain.training import pair_loss


def batch(targets, margins=None):
    targets = torch.tensor(targets, dtype=torch.float32)
    return {
        "targets": targets,
        "margins": torch.zeros_like(targets) if margins is None else margins,
    }


def test_bradley_terry_is_the_validation_loss():
    r_c, r_r = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([0.0, 0.5, 2.0])
    b = batch([1.0, 0.75, 0.5])
    assert training_loss(r_c, r_r, b).item() == pytest.approx(
        pair_loss(r_c, r_r, b["margins"], b["targets"]).item()
    )


def test_gce_against_its_formula_and_bounded_on_a_flipped_label():
    delta = torch.tensor([0.0, 2.0, -50.0])
    losses = pair_losses(delta, torch.ones(3), "gce")
    expected = [(1 - (1 / (1 + math.exp(-d))) ** GCE_Q) / GCE_Q for d in (0.0, 2.0, -50.0)]
    assert losses.tolist() == pytest.approx(expected, rel=1e-5)
    # A confidently contradicted label costs at most 1/q, where Bradley-Terry costs 50.
    assert losses[2].item() == pytest.approx(1 / GCE_Q, rel=1e-4)
    assert pair_losses(delta, torch.ones(3), "bradley_terry")[2].item() == pytest.approx(50.0)


def test_gce_tie_is_smallest_at_equal_rewards():
    deltas = torch.linspace(-3, 3, 61)
    losses = pair_losses(deltas, torch.full_like(deltas, 0.5), "gce")
    assert deltas[int(losses.argmin())].item() == pytest.approx(0.0, abs=1e-6)


def test_label_smoothing_moves_targets_toward_a_half():
    assert smoothed(torch.tensor([1.0, 0.5, 0.0]), 0.1).tolist() == pytest.approx([0.95, 0.5, 0.05])
    r_c, r_r = torch.tensor([3.0]), torch.tensor([0.0])
    plain = training_loss(r_c, r_r, batch([1.0]))
    smooth = training_loss(r_c, r_r, batch([1.0]), label_smoothing=0.1)
    expected = -(0.95 * math.log(1 / (1 + math.exp(-3))) + 0.05 * math.log(1 / (1 + math.exp(3))))
    assert smooth.item() == pytest.approx(expected, rel=1e-5)
    assert smooth.item() > plain.item()


def test_config_names_the_loss_and_refuses_bad_values():
    assert TrainConfig().loss == "bradley_terry" and TrainConfig().label_smoothing == 0.0
    with pytest.raises(ConfigError, match="loss must be one of"):
        TrainConfig(loss="hinge")
    with pytest.raises(ConfigError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.0)
