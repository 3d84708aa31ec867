"""Encoding, truncation and batching of preference rows (rewardtrain.core.data, rewardtrain.core.model)."""

import pytest
import torch

from rewardtrain.core.config import TrainConfig
from rewardtrain.core.data import (
    PairCollator,
    encode_rows,
    epoch_steps,
    length_grouped_batches,
    random_batches,
)
from rewardtrain.core.model import encode_many, format_input
from rewardtrain.core.scoring import RewardScorer
from tests.rewardtrain.tiny import bert_tokenizer, gpt2_tokenizer

ITEMS = [
    {"chosen_ids": [5, 6, 7], "rejected_ids": [8], "tie": False, "p_chosen": 0.75, "strength": 2},
    {"chosen_ids": [9], "rejected_ids": [10, 11], "tie": True, "p_chosen": 0.5, "strength": 3},
    {"chosen_ids": [12, 13], "rejected_ids": [14], "tie": False, "p_chosen": 1.0, "strength": None},
]


def test_collator_pads_chosen_then_rejected_into_one_batch():
    batch = PairCollator(0, margin_scale=0.5)(ITEMS)
    assert torch.equal(
        batch["input_ids"],
        torch.tensor([[5, 6, 7], [9, 0, 0], [12, 13, 0], [8, 0, 0], [10, 11, 0], [14, 0, 0]]),
    )
    assert torch.equal(
        batch["attention_mask"],
        torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 0]]),
    )
    assert torch.equal(batch["margins"], torch.tensor([1.0, 0.0, 0.0]))  # ties get no margin
    assert torch.equal(batch["ties"], torch.tensor([False, True, False]))
    assert torch.equal(batch["targets"], torch.tensor([0.75, 0.5, 1.0]))


def test_collator_hard_labels_and_left_padding():
    batch = PairCollator(99, use_soft_labels=False, padding_side="left")(ITEMS[:2])
    assert torch.equal(
        batch["input_ids"], torch.tensor([[5, 6, 7], [99, 99, 9], [99, 99, 8], [99, 10, 11]])
    )
    assert torch.equal(
        batch["attention_mask"], torch.tensor([[1, 1, 1], [0, 0, 1], [0, 0, 1], [0, 1, 1]])
    )
    assert torch.equal(batch["targets"], torch.tensor([1.0, 0.5]))
    assert torch.equal(batch["margins"], torch.tensor([0.0, 0.0]))


def test_collator_pad_to_multiple():
    batch = PairCollator(0, pad_to_multiple_of=8)(ITEMS[:1])
    assert batch["input_ids"].shape == (2, 8)


def test_length_grouped_batches_cover_every_index_once_with_little_padding():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    batches = length_grouped_batches(lengths, 16, seed=3)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    assert all(len(b) <= 16 for b in batches)
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # longest batch first
    assert batches == length_grouped_batches(lengths, 16, seed=3)
    assert batches != length_grouped_batches(lengths, 16, seed=4)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    # Random batches pad to ~the maximum of 16 draws (about 95 here); grouped ones barely pad.
    assert padded / sum(lengths) < 1.1


def test_random_batches_cover_every_index_once_and_mix_lengths():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    batches = random_batches(len(lengths), 16, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert [len(b) for b in batches] == [16] * 62 + [8]
    assert batches == random_batches(len(lengths), 16, seed=3)
    assert batches != random_batches(len(lengths), 16, seed=4)
    # Membership is not by length: a batch's lengths span most of the range.
    spans = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches[:-1]]
    assert sum(spans) / len(spans) > 60


def test_epoch_steps_group_by_length_or_draw_at_random():
    lengths = [(i * 37) % 101 + 1 for i in range(64)]
    cfg = TrainConfig(seed=5, gradient_accumulation_steps=2)
    grouped = epoch_steps(lengths, cfg, 8, epoch=1)
    drawn = epoch_steps(lengths, cfg, 8, epoch=1, grouped=False)
    assert [len(step) for step in grouped] == [len(step) for step in drawn] == [2] * 4
    assert [b for step in grouped for b in step] == length_grouped_batches(lengths, 8, seed=6)
    assert [b for step in drawn for b in step] == random_batches(64, 8, seed=6)
    assert drawn != epoch_steps(lengths, cfg, 8, epoch=2, grouped=False)


def test_plain_format_with_roles():
    tok = bert_tokenizer()
    prompt = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "More"},
    ]
    assert format_input(tok, prompt, "Sure") == (
        "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello\n\nUser: More\n\nAssistant: Sure"
    )
    assert format_input(tok, "Hi", "Yo") == "User: Hi\n\nAssistant: Yo"


def test_chat_template_is_used_when_present():
    tok = gpt2_tokenizer()
    tok.chat_template = (
        "{% for m in messages %}<|endoftext|>{{ m['role'] }} : {{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<|endoftext|>assistant : {% endif %}"
    )
    prompt = [{"role": "user", "content": "w1 w2 w3 w4"}]
    text = format_input(tok, prompt, "w5 w6")
    assert text == "<|endoftext|>user : w1 w2 w3 w4<|endoftext|>assistant : w5 w6"
    (enc,) = encode_many(tok, [prompt], ["w5 w6"], 5)
    assert tok.convert_ids_to_tokens(enc.ids) == ["<|endoftext|>", "assistant", ":", "w5", "w6"]


def test_truncation_cuts_the_prompt_start_never_the_response_and_counts():
    tok = bert_tokenizer()
    rows = [
        {"prompt": "w1 w2 w3 w4 w5 w6", "chosen": "w7 w8", "rejected": "w9"},
        {"prompt": "w1", "chosen": "w2", "rejected": "w3"},
    ]
    encoded, truncated = encode_rows(rows, tok, max_length=8)
    assert truncated == 1
    tokens = tok.convert_ids_to_tokens(encoded[0]["chosen_ids"])
    assert tokens == ["[CLS]", "w5", "w6", "assistant", ":", "w7", "w8", "[SEP]"]
    tokens = tok.convert_ids_to_tokens(encoded[0]["rejected_ids"])
    assert tokens == ["[CLS]", "w4", "w5", "w6", "assistant", ":", "w9", "[SEP]"]
    # The short row is exactly what the tokenizer gives for the formatted text.
    assert encoded[1]["chosen_ids"] == tok(format_input(tok, "w1", "w2"))["input_ids"]
    assert encoded[1]["p_chosen"] == 1.0 and encoded[1]["tie"] is False


def test_a_response_longer_than_max_length_keeps_its_end():
    tok = gpt2_tokenizer()
    (enc,) = encode_many(tok, ["w1 w2"], ["w3 w4 w5 w6 w7 w8"], 4)
    assert enc.truncated and enc.response_cut
    assert tok.convert_ids_to_tokens(enc.ids) == ["w5", "w6", "w7", "w8"]


@pytest.mark.parametrize("make", [bert_tokenizer, gpt2_tokenizer])
def test_untruncated_ids_equal_the_tokenizers_own(make):
    tok = make()
    prompt = [{"role": "user", "content": "w1 w2"}, {"role": "assistant", "content": "w3"}]
    (enc,) = encode_many(tok, [prompt], ["good w4"], 64)
    assert not enc.truncated
    assert enc.ids == tok(format_input(tok, prompt, "good w4"))["input_ids"]


TOO_LONG = "sequence-length-is-longer-than-the-specified-maximum"


def test_cutting_to_the_model_limit_raises_no_false_indexing_errors_warning():
    # transformers warns, once per tokenizer, that a text longer than the model's limit "will
    # result in indexing errors"; encode_many cuts every input to max_length, so it must not.
    tok = bert_tokenizer()
    tok.model_max_length = 8
    (enc,) = encode_many(tok, ["w1 w2 w3 w4 w5 w6"], ["w7 w8"], 8)
    assert len(enc.ids) == 8 and enc.truncated
    # The reward server's path for texts it is given formatted (no model is needed to encode).
    scorer = RewardScorer(torch.nn.Identity(), tok, device="cpu", max_length=8)
    assert [len(ids) for ids in scorer.encode_texts(["w1 w2 w3 w4 w5 w6 w7 w8 w9"])] == [8]
    assert TOO_LONG not in tok.deprecation_warnings
    # The check sees the warning where it is due: the tokenizer's own call, uncut.
    tok(format_input(tok, "w1 w2 w3 w4 w5 w6", "w7 w8"))
    assert tok.deprecation_warnings[TOO_LONG] is True
