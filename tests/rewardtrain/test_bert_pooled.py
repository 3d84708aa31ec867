"""BERT's last layer computed for [CLS] alone gives the plain forward's rewards and gradients
(rewardtrain.core.bert_pooled)."""

import pytest
import torch

from rewardtrain.core.bert_pooled import bert_pooled_rewards, supports_pooled_forward
from rewardtrain.core.data import PairCollator
from rewardtrain.core.model import disable_dropout, load_backbone, rewards, set_attention
from tests.rewardtrain.tiny import make_bert, make_gpt2


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    # Three layers: the first two run whole, the last for [CLS] alone. Dropout off, as in
    # training, so that two forwards can be compared.
    model, tok = load_backbone(str(make_bert(tmp_path_factory.mktemp("bert"), layers=3, seed=3)))
    disable_dropout(model)
    return model, tok


def _padded_batch(pad_id: int) -> dict[str, torch.Tensor]:
    items = [
        {"chosen_ids": [2, 10, 11, 12, 13, 3], "rejected_ids": [2, 14, 3]},
        {"chosen_ids": [2, 15, 3], "rejected_ids": [2, 16, 17, 18, 19, 20, 21, 3]},
    ]
    for it in items:
        it.update(tie=False, p_chosen=1.0, strength=None)
    return PairCollator(pad_id)(items)


def _rewards_and_grads(model, batch, reward_fn):
    model.zero_grad(set_to_none=True)
    r = reward_fn(model, batch["input_ids"], batch["attention_mask"])
    # A loss that weighs rows differently, so each row's gradient counts.
    (r * torch.arange(1.0, len(r) + 1)).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return r.detach(), grads


def _plain(model, input_ids, attention_mask):
    return model(input_ids=input_ids, attention_mask=attention_mask).logits.squeeze(-1)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_rewards_and_gradients_equal_the_plain_forward_with_padding(bert, attention):
    model, tok = bert
    model.train()
    set_attention(model, attention)
    batch = _padded_batch(tok.pad_token_id)
    assert (batch["attention_mask"] == 0).any()
    assert supports_pooled_forward(model)

    want_r, want_g = _rewards_and_grads(model, batch, _plain)
    got_r, got_g = _rewards_and_grads(model, batch, bert_pooled_rewards)

    assert torch.allclose(got_r, want_r, atol=1e-5), (got_r, want_r)
    assert got_g.keys() == want_g.keys()
    # Every weight that gets a gradient, including the last layer's and the embeddings'.
    assert any(".layer.2.output.dense" in n for n in got_g)
    assert "bert.embeddings.word_embeddings.weight" in got_g
    for name in want_g:
        assert torch.allclose(got_g[name], want_g[name], atol=1e-5, rtol=1e-4), name
    # rewards() takes this path for plain BERT.
    with torch.no_grad():
        assert torch.allclose(rewards(model, batch["input_ids"], batch["attention_mask"]), want_r)


def test_padding_does_not_change_a_rows_reward(bert):
    model, tok = bert
    model.eval()
    batch = _padded_batch(tok.pad_token_id)
    with torch.no_grad():
        padded = bert_pooled_rewards(model, batch["input_ids"], batch["attention_mask"])
        for row in range(len(padded)):
            n = int(batch["attention_mask"][row].sum())
            ids = batch["input_ids"][row : row + 1, :n]
            alone = bert_pooled_rewards(model, ids, torch.ones_like(ids))
            assert padded[row].item() == pytest.approx(alone.item(), abs=1e-5)


def test_other_architectures_keep_the_plain_forward(tmp_path):
    model, _ = load_backbone(str(make_gpt2(tmp_path / "gpt2")))
    assert not supports_pooled_forward(model)
