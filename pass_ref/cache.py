"""KV-cache discipline in one place.

``CachedModel`` wraps a causal LM, its ``DynamicCache`` and the list of token ids whose
keys/values the cache holds. Its verbs:

- ``forward(tokens, extra_embeds=None)``: run the model on tokens that have no KV yet,
  optionally followed by extra input vectors (PaSS's look-ahead embeddings); the extra
  positions' KV is cropped right after the call (Algorithm 1, step 1), so the cache
  only ever holds real tokens;
- ``rollback(length)``: crop the cache back to its first ``length`` tokens (rejected
  drafts, Algorithm 1 step 3);
- ``sync(sequence)``: crop to the longest common prefix with ``sequence`` and return
  the tokens that still need a forward pass (used by a draft model's own cache).

Invariant after every call: ``len(self.tokens) == self.cache.get_seq_length()``.
Transformers 5 API: the cache is passed as ``cache=``, positions follow
from the cache length, ``crop(-k)`` removes the last k positions.

Shapes: ``T`` new tokens, ``M`` extra vectors, ``D`` hidden size, ``V`` vocabulary.
"""

from __future__ import annotations

import time
from typing import Sequence

import torch
from transformers import DynamicCache


def context_length(model) -> int | None:
    """The model's maximum number of positions, if its config states one."""
    return getattr(model.config, "max_position_embeddings", None)


def input_device(model) -> torch.device:
    """Where token ids must live: the input embedding's device (works with device_map)."""
    return model.get_input_embeddings().weight.device


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work on ``device`` (a no-op elsewhere) before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class CachedModel:
    """A frozen causal LM with its KV cache and call statistics."""

    def __init__(self, model) -> None:
        self.model = model
        self.cache = DynamicCache(config=model.config)
        self.tokens: list[int] = []  # ids whose KV is in the cache, in order
        self.device = input_device(model)
        self.max_positions = context_length(model)
        self.calls = 0  # forward passes made
        self.forward_time_s = 0.0  # seconds spent inside forward passes (exact on CPU)
        self.call_sizes: list[int] = []  # inputs (tokens + extra vectors) of each call

    @property
    def length(self) -> int:
        return len(self.tokens)

    def forward(
        self,
        tokens: Sequence[int],
        extra_embeds: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        keep: int | None = None,
    ) -> torch.Tensor:
        """Logits for ``tokens`` (then ``extra_embeds``), appending the tokens' KV.

        Args:
            tokens: T >= 1 ids with no KV yet (the cache's continuation).
            extra_embeds: optional (M, D) input vectors placed after the tokens; their KV
                is discarded before returning.
            position_ids, attention_mask: optional (1, T + M) positions and additive
                (1, 1, T + M, P + T + M) mask (one-call PaSS, ``pass_ref.fused``); by
                default positions continue the cache and attention is causal.
            keep: compute logits for the last ``keep`` inputs only (the LM head is a large
                share of a call over a long prompt); None keeps all.
        Returns:
            (T + M, V) logits, or (keep, V); row i predicts the token after its input.
        """
        tokens = list(tokens)
        M = 0 if extra_embeds is None else extra_embeds.shape[0]
        T = len(tokens)
        if T == 0:
            raise ValueError("forward needs at least one new token")
        if self.max_positions is not None and self.length + T + M > self.max_positions:
            raise ValueError(
                f"sequence of {self.length + T + M} positions exceeds the model's context of "
                f"{self.max_positions}"
            )
        ids = torch.tensor([tokens], dtype=torch.long, device=self.device)  # (1, T)
        start = time.perf_counter()
        if (position_ids is None) != (attention_mask is None):
            raise ValueError("give position_ids and attention_mask together (a custom layout needs both)")
        layout = {} if position_ids is None else {"position_ids": position_ids, "attention_mask": attention_mask}
        if keep is not None:
            if not 1 <= keep <= T + M:
                raise ValueError(f"keep must be in 1..{T + M}, got {keep}")
            layout["logits_to_keep"] = keep
        if extra_embeds is None:
            out = self.model(input_ids=ids, cache=self.cache, use_cache=True, **layout)
        else:
            embeds = self.model.get_input_embeddings()(ids)  # (1, T, D)
            extra = extra_embeds.to(dtype=embeds.dtype, device=embeds.device)[None]  # (1, M, D)
            out = self.model(inputs_embeds=torch.cat([embeds, extra], dim=1), cache=self.cache, use_cache=True, **layout)
        self.forward_time_s += time.perf_counter() - start
        self.calls += 1
        self.call_sizes.append(T + M)
        self.tokens.extend(tokens)
        if M:
            self.cache.crop(-M)  # look-ahead KV is never kept
        self._check()
        return out.logits[0]  # (T + M or keep, V)

    def rollback(self, length: int) -> None:
        """Keep only the first ``length`` cached tokens."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot roll back a cache of {self.length} tokens to {length}")
        if length < self.length:
            self.cache.crop(length - self.length)
            del self.tokens[length:]
        self._check()

    def sync(self, sequence: Sequence[int]) -> list[int]:
        """Crop to the common prefix with ``sequence``; return the tokens still to feed.

        At least one token is always returned (its logits are what the caller needs), so a
        fully cached sequence gives back its last token after cropping it.
        """
        common = 0
        for cached, wanted in zip(self.tokens, sequence):
            if cached != wanted:
                break
            common += 1
        common = min(common, len(sequence) - 1)
        self.rollback(common)
        return list(sequence[common:])

    def _check(self) -> None:
        cached = self.cache.get_seq_length()
        if cached != self.length:
            raise RuntimeError(f"KV cache holds {cached} positions but {self.length} tokens are tracked")
