"""Tiny offline backbones for tests: a BERT-style encoder, GPT-2- and Llama-style decoders built
from local configs with a small word-level vocabulary (no hub, a few hundred thousand parameters)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    LlamaConfig,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)

WORDS = [f"w{i}" for i in range(60)] + ["good", "bad", "user", "assistant", "system", ":"]


def _vocab(specials: list[str]) -> dict[str, int]:
    return {token: i for i, token in enumerate([*specials, *WORDS])}


def bert_tokenizer() -> PreTrainedTokenizerFast:
    vocab = _vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def gpt2_tokenizer() -> PreTrainedTokenizerFast:
    """No pad token, like GPT-2: load_backbone sets pad = eos."""
    vocab = _vocab(["<|endoftext|>", "<unk>"])
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<unk>",
    )


def _save(path: Path, model_class, config, tokenizer, seed: int) -> Path:
    """A random-init model of `config` and its tokenizer saved as a backbone folder."""
    import torch

    torch.manual_seed(seed)
    model_class(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_bert(path: Path, *, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A tiny BERT sequence classifier saved as a backbone folder."""
    tokenizer = bert_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    return _save(path, BertForSequenceClassification, config, tokenizer, seed)


def make_gpt2(path: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A tiny GPT-2 sequence classifier (no pad token) saved as a backbone folder."""
    tokenizer = gpt2_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=hidden,
        n_layer=layers,
        n_head=2,
        n_positions=128,
        num_labels=1,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return _save(path, GPT2ForSequenceClassification, config, tokenizer, seed)


def make_llama(path: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A tiny random Llama sequence classifier (no pad token: pad = eos) saved as a backbone."""
    tokenizer = gpt2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        num_labels=1,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return _save(path, LlamaForSequenceClassification, config, tokenizer, seed)


@contextmanager
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared CPU those threads stall
    waiting for each other (ten times slower under load); tests run them on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# A chat template over the word-level vocabulary: "user : hello assistant : ".
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def make_chat_lm(
    path: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0, silent: bool = False
) -> Path:
    """A tiny random Llama causal LM with a chat template, saved as a folder that
    `transformers serve` loads: real chat completions of random words. Its tokenizer takes no
    token_type_ids (generate() refuses them), and the end-of-text token is never sampled, so a
    reply is never empty. `silent` turns that around: every token but end-of-text is
    suppressed, so every reply is empty (an endpoint that answers with nothing)."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    tokenizer = gpt2_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    eos = tokenizer.eos_token_id
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Sampling on (as a real instruct model's generation config has it): a request's
    # temperature and seed then give different samples.
    suppressed = [t for t in range(len(tokenizer)) if t != eos] if silent else [eos]
    model.generation_config = GenerationConfig(
        bos_token_id=eos, eos_token_id=eos, suppress_tokens=suppressed, do_sample=True
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
