"""rewardtrain.client.reward_function against a live reward server: one real GRPOTrainer step
on a tiny random policy (CPU), and the conversational call GRPOTrainer makes."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from rewardtrain.client import RewardServerError, reward_function
from rewardtrain.core.scoring import RewardScorer
from rewardtrain.services import version_activate
from tests.rewardtrain.serving.conftest import start_server, versions  # noqa: F401 - fixtures
from tests.rewardtrain.tiny import gpt2_tokenizer, one_thread

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def tiny_policy():
    """A random 2-layer GPT-2 language model over the tiny word vocabulary."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tokenizer = gpt2_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=64,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    return GPT2LMHeadModel(config), tokenizer


def test_a_grpo_step_scores_its_completions_on_the_server(
    project,
    staff,
    versions,  # noqa: F811
    start_server,  # noqa: F811
    tmp_path,
):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    v1, _ = versions
    version_activate(version=v1)
    server = start_server("--project", "demo")
    token = Token.objects.create(user=staff).key
    served = reward_function(server.url, token)
    calls = []

    def prefloop_reward(prompts, completions, **kwargs):
        rewards = served(prompts, completions, **kwargs)
        calls.append((prompts, completions, rewards))
        return rewards

    policy, tokenizer = tiny_policy()
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=6,
        max_steps=1,
        learning_rate=1e-3,
        use_cpu=True,
        bf16=False,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=0,
    )
    dataset = Dataset.from_dict({"prompt": ["w1 w2 w3", "w4 w5", "w6", "w7 w8"]})
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[prefloop_reward],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    with one_thread():
        trainer.train()
        scorer = RewardScorer.load(v1.path, device="cpu")

    assert len(calls) == 1
    prompts, completions, rewards = calls[0]
    assert len(rewards) == len(completions) == 4 and all(isinstance(c, str) for c in completions)
    assert rewards == pytest.approx(scorer.score(prompts, completions), abs=1e-5)
    logged = next(h for h in trainer.state.log_history if "rewards/prefloop_reward/mean" in h)
    assert logged["rewards/prefloop_reward/mean"] == pytest.approx(sum(rewards) / 4, abs=1e-4)

    # Conversational data, called as GRPOTrainer calls a reward function.
    prompts = [
        [{"role": "system", "content": "w9"}, {"role": "user", "content": "w10 w11"}],
        [{"role": "user", "content": [{"type": "text", "text": "w12"}]}],
    ]
    completions = [
        [{"role": "assistant", "content": "good w13"}],
        [
            {"role": "assistant", "content": "w14"},
            {"role": "tool", "content": "w15"},
            {"role": "assistant", "content": "bad"},
        ],
    ]
    rewards = served(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1, 2], [3, 4]],
        trainer_state=None,
        answer=["x", "y"],
    )
    want = scorer.score(
        [
            prompts[0],
            [
                {"role": "user", "content": "w12"},
                {"role": "assistant", "content": "w14"},
                {"role": "tool", "content": "w15"},
            ],
        ],
        ["good w13", "bad"],
    )
    assert rewards == pytest.approx(want, abs=1e-5)

    with pytest.raises(RewardServerError, match="answered 401: an 'Authorization"):
        reward_function(server.url)(["w1"], ["good"])
