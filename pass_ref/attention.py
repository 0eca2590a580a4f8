"""Grouped-query attention that reads each key/value head once: the static path's attention.

Most small causal LMs share each key/value head between g query heads (grouped-query
attention: SmolLM2-135M has 9 query heads over 3 KV heads, Qwen2.5-0.5B 14 over 2).
transformers' "eager" attention first copies every KV head g times (``repeat_kv``), then
multiplies. For one query inductor fuses that copy away; for two or more queries the copy
and a batched matmul over H heads remain, and on CPU that copy of the whole cache in every
layer was most of the step from t(1) to t(2) (``docs/architecture.md``).

Here the g query heads of one KV head are stacked as g n rows of one matrix, so a single
matmul per KV head reads that head's keys and values once, with no copy:

    Q (B, H, n, d) -> (B, H_kv, g n, d);   S = Q K^T (B, H_kv, g n, C);   S + mask;   softmax;   S V

Each row is the same dot products, softmax and weighted sum as the eager attention's, only
in another matrix layout (equal to it to round-off; ``tests/test_static.py``).
"""

from __future__ import annotations

import torch

NAME = "pass_ref_grouped"  # the name registered with transformers' AttentionInterface


def grouped_attention(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, scaling: float, dropout: float = 0.0, **kwargs):
    """Attention outputs (B, n, H, d) and None (no weights), from query (B, H, n, d), key and value (B, H_kv, C, d).

    ``attention_mask``: additive, (B, 1, n, >= C) or None. Inference only: no dropout, and a
    model whose attention takes more than a mask (logit soft-capping, attention sinks) is refused.
    """
    if module.training and dropout > 0:
        raise ValueError("grouped_attention is for inference: it applies no dropout")
    extra = {k for k in ("softcap", "s_aux") if kwargs.get(k) is not None}
    if extra:
        raise ValueError(f"grouped_attention does not implement {sorted(extra)}: use the model's own attention")
    B, H, n, d = query.shape
    H_kv, C = key.shape[1], key.shape[2]
    if H % H_kv:
        raise ValueError(f"{H} query heads cannot share {H_kv} key/value heads evenly")
    g = H // H_kv
    rows = query.reshape(B, H_kv, g * n, d)  # heads h = j g .. j g + g - 1 share KV head j (repeat_kv's order)
    scores = torch.matmul(rows, key.transpose(2, 3)) * scaling  # (B, H_kv, g n, C)
    if attention_mask is not None:  # (B, 1, n, C): the same mask for the g heads of a group; (B, H, n, C): one per head
        mask = attention_mask[..., :C]
        mask = mask[:, :, None] if mask.shape[1] == 1 else mask.reshape(B, H_kv, g, n, C)
        scores = (scores.view(B, H_kv, g, n, C) + mask).view(B, H_kv, g * n, C)
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(weights, value)  # (B, H_kv, g n, d)
    return out.view(B, H, n, d).transpose(1, 2).contiguous(), None


def register() -> str:
    """Register ``grouped_attention`` with transformers and return its name for ``set_attn_implementation``.

    Its masks are the "eager" attention's (additive floats): without a mask function of its own,
    transformers would hand a custom attention no causal mask at all on a plain ``model(...)`` call.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(NAME, grouped_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS["eager"])
    return NAME
