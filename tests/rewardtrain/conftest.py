"""Fixtures of the reward-model tests: one thread for torch, and a project judged on the tiny
BERT."""

import pytest

from tests.rewardtrain.judged import add_judged_pairs, use_tiny_backbone
from tests.rewardtrain.tiny import one_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Every reward-model test module runs torch on one thread (tests/rewardtrain/tiny.py)."""
    with one_thread():
        yield


@pytest.fixture
def judged(project, labeler, backbone):
    """The demo project: 48 judged pairs (40 train, 4 validation, 4 test) on the tiny BERT."""
    use_tiny_backbone(project, backbone)
    add_judged_pairs(project, labeler, 48)
    return project
