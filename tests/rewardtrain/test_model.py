"""Loading backbones and reading rewards at the right token (rewardtrain.core.model)."""

import pytest
import torch

from rewardtrain.core.data import PairCollator
from rewardtrain.core.model import BackboneError, default_backbone, load_backbone, rewards
from tests.rewardtrain.tiny import make_bert, make_gpt2


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    model, tok = load_backbone(str(make_gpt2(tmp_path_factory.mktemp("gpt2"))))
    return model.eval(), tok


def _alone(model, ids):
    """The reward of one unpadded sequence, from the model's own forward."""
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0, 0].item()


def test_decoder_gets_pad_equal_to_eos(gpt2):
    model, tok = gpt2
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    assert model.config.pad_token_id == tok.eos_token_id


@pytest.mark.parametrize("side", ["right", "left"])
def test_decoder_reward_is_read_at_each_rows_last_real_token(gpt2, side):
    model, tok = gpt2
    eos = tok.eos_token_id
    # The second chosen sequence ends in eos (== pad): the mask, not the id, marks it real.
    items = [
        {
            "chosen_ids": [5, 6, 7, 8, 9],
            "rejected_ids": [10],
            "tie": False,
            "p_chosen": 1.0,
            "strength": None,
        },
        {
            "chosen_ids": [11, 12, eos],
            "rejected_ids": [13, eos, 14, 15],
            "tie": False,
            "p_chosen": 1.0,
            "strength": None,
        },
    ]
    batch = PairCollator(eos, padding_side=side)(items)
    with torch.no_grad():
        got = rewards(model, batch["input_ids"], batch["attention_mask"])
    sequences = [it["chosen_ids"] for it in items] + [it["rejected_ids"] for it in items]
    want = []
    for seq in sequences:
        mask = torch.ones(1, len(seq), dtype=torch.long)
        with torch.no_grad():
            want.append(rewards(model, torch.tensor([seq]), mask).item())
    assert got.tolist() == pytest.approx(want, abs=1e-5)
    # Unpadded, our reading and the plain model's agree where no real token equals pad.
    assert want[0] == pytest.approx(_alone(model, sequences[0]), abs=1e-6)
    assert want[3] == pytest.approx(_alone(model, sequences[3]), abs=1e-6)
    assert got.dtype == torch.float32


def test_encoder_reward_is_the_classifier_output(tmp_path):
    model, tok = load_backbone(str(make_bert(tmp_path / "bert")))
    model.eval()
    batch = PairCollator(tok.pad_token_id)(
        [
            {
                "chosen_ids": [2, 10, 11, 3],
                "rejected_ids": [2, 12, 3],
                "tie": False,
                "p_chosen": 1.0,
                "strength": None,
            }
        ]
    )
    with torch.no_grad():
        got = rewards(model, batch["input_ids"], batch["attention_mask"])
    assert got[0].item() == pytest.approx(_alone(model, [2, 10, 11, 3]), abs=1e-5)
    assert got[1].item() == pytest.approx(_alone(model, [2, 12, 3]), abs=1e-5)


def test_missing_backbone_path_is_a_clear_error(tmp_path):
    with pytest.raises(BackboneError, match="not found"):
        load_backbone(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError):
        load_backbone(str(tmp_path / "empty"))


def test_default_minilm_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tok = load_backbone(default_backbone())
    assert model.config.model_type == "bert" and model.config.num_labels == 1
    assert tok.pad_token == "[PAD]" and tok.eos_token is None
    ids = tok("User: hi\n\nAssistant: hello", return_tensors="pt")
    with torch.no_grad():
        r = rewards(model.eval(), ids["input_ids"], ids["attention_mask"])
    assert r.shape == (1,)
