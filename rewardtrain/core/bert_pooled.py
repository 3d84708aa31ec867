"""BERT rewards that compute the last encoder layer only where the classifier reads it.

BertForSequenceClassification reads one position, [CLS], through its pooler. In the last
layer every other position's query, attention output and feed-forward are computed and then
thrown away; here that layer runs for the [CLS] row alone (its keys and values still span all
tokens), through the model's own modules. Rewards and gradients are the plain forward's up to
float rounding, with 10/12 of one layer's matmuls left out (MiniLM, 6 layers: ~1/7 of them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def supports_pooled_forward(model: nn.Module) -> bool:
    """A plain BERT encoder classifier: no decoder or cross-attention, a pooler, and a head
    that reads nothing but the pooled [CLS] row."""
    from transformers import BertForSequenceClassification

    if type(model) is not BertForSequenceClassification:
        return False
    config = model.config
    return (
        not config.is_decoder
        and not config.add_cross_attention
        and model.bert.pooler is not None
        and len(model.bert.encoder.layer) > 0
    )


def bert_pooled_rewards(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """One float32 reward per row, as model(input_ids, attention_mask).logits[:, 0]."""
    from transformers.masking_utils import create_bidirectional_mask

    bert = model.bert
    hidden = bert.embeddings(input_ids=input_ids)
    mask = create_bidirectional_mask(
        config=model.config, inputs_embeds=hidden, attention_mask=attention_mask
    )
    *body, last = bert.encoder.layer
    for layer in body:
        hidden = layer(hidden, mask)
    pooled_row = _last_layer_first_row(last, hidden, attention_mask)
    logits = model.classifier(model.dropout(bert.pooler(pooled_row)))
    return logits.squeeze(-1).float()


def _last_layer_first_row(
    layer: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """BertLayer's output at position 0 alone: [B, 1, H]."""
    attention = layer.attention.self
    batch, width, _ = hidden.shape
    heads, size = attention.num_attention_heads, attention.attention_head_size
    first = hidden[:, :1]
    query = attention.query(first).view(batch, 1, heads, size).transpose(1, 2)
    key = attention.key(hidden).view(batch, width, heads, size).transpose(1, 2)
    value = attention.value(hidden).view(batch, width, heads, size).transpose(1, 2)
    context = F.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask[:, None, None, :].bool(),
        dropout_p=attention.dropout.p if attention.training else 0.0,
        scale=attention.scaling,
    )
    context = context.transpose(1, 2).reshape(batch, 1, heads * size)
    attended = layer.attention.output(context, first)
    return layer.output(layer.intermediate(attended), attended)
