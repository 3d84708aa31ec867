"""Which torch device a run or a server uses when none is named: the one resolver that training,
the training service and the reward server share."""

from __future__ import annotations


def resolve_device(device: str) -> str:
    """`device` as named; "" means cuda when a GPU is visible, else cpu."""
    if device:
        return device
    # torch is imported here, not at module level: the Django side calls this too.
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
