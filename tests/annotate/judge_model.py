"""A tiny judge for tests: a Llama causal LM whose weights are set by hand (not trained, not
downloaded) so that `transformers serve` answers judge prompts the way the tests need, over the
real HTTP path. Each layer adds nothing to the residual stream (its output projections are
zero), so the next token depends on the current one alone: a bigram table written into the
output head, read greedily.

- A prompt ending in "good" is answered `Verdict: 1`, one ending in "bad" `verdict: 2`: with a
  rubric ending in {response_1}, the judge prefers the response that ends in "good", in either
  order (a consistent judge).
- A prompt ending in a word outside the vocabulary or in punctuation (the default rubric, the
  format reminder) is answered `Verdict: 1`: a judge that always picks the response shown
  first (pure position bias).
- A prompt ending in a word w<i> is answered w<i+1> w<i+2> ... with no verdict: garbage, which
  the reminder then mends.

The chat template joins the messages' contents, so the last token of the last message is what
the judge answers to."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import GenerationConfig, LlamaConfig, PreTrainedTokenizerFast

WORDS = [f"w{i}" for i in range(40)]
# "Verdict:" and "verdict:" are output tokens only (input is lowercased and split at ":"):
# two spellings so that the table can lead each to its own choice.
VOCAB = ["<|endoftext|>", "<unk>", *WORDS, "good", "bad", ":", "Verdict:", "verdict:", "1", "2"]
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
HIDDEN = 64  # at least the vocabulary: each token its own direction


def _tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<unk>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    return tokenizer


def _next(token: str) -> str:
    """The bigram table: what follows each token."""
    if token in ("good", "<unk>"):
        return "Verdict:"
    if token == "bad":
        return "verdict:"
    if token == "Verdict:":
        return "1"
    if token == "verdict:":
        return "2"
    if token in ("1", "2", "<|endoftext|>"):
        return "<|endoftext|>"
    if token in WORDS:
        return WORDS[(WORDS.index(token) + 1) % len(WORDS)]
    return WORDS[0]  # ":"


def make_judge_lm(path: Path) -> Path:
    import torch
    from transformers import LlamaForCausalLM

    tokenizer = _tokenizer()
    eos = tokenizer.eos_token_id
    config = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=HIDDEN,
        intermediate_size=HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=eos,
        eos_token_id=eos,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[:, : len(VOCAB)] = torch.eye(len(VOCAB))
        model.model.norm.weight.fill_(1.0)
        # After the final RMS norm a one-hot row is sqrt(HIDDEN) on its own axis.
        head = torch.zeros(len(VOCAB), HIDDEN)
        for i, token in enumerate(VOCAB):
            head[VOCAB.index(_next(token)), i] = 12.0 / HIDDEN**0.5
        model.lm_head.weight.copy_(head)
    model.generation_config = GenerationConfig(bos_token_id=eos, eos_token_id=eos, do_sample=False)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# What `transformers serve --log-level debug --enable-log-requests` writes for each request.
_BODY = re.compile(r"Request \S+ body: (\{.*\})\s*$")


@dataclass
class RequestLog:
    """The request bodies a server (scripts/chat_server.py's, with a log) wrote since
    `mark()`: what reached the endpoint, as it arrived."""

    server: Any
    offset: int = 0

    def mark(self) -> None:
        self.offset = self.server.log.stat().st_size

    def bodies(self) -> list[dict]:
        with self.server.log.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode("utf-8", errors="replace")
        return [json.loads(m.group(1)) for m in map(_BODY.search, text.splitlines()) if m]
