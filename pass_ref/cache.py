"""KV-cache discipline in one place.

``CachedModel`` wraps a causal LM, its ``DynamicCache`` and the list of token ids whose
keys/values the cache holds. Its verbs:

- ``forward(tokens, extra=None, keep=None)``: run the model on tokens that have no KV yet,
  optionally followed by ``ExtraInputs`` (PaSS's look-ahead embeddings, one-call PaSS's
  groups); the extra positions' KV is cropped right after the call (Algorithm 1, step 1),
  so the cache only ever holds real tokens;
- ``rollback(length)``: crop the cache back to its first ``length`` tokens (rejected
  drafts, Algorithm 1 step 3);
- ``sync(sequence)``: crop to the longest common prefix with ``sequence`` and return
  the tokens that still need a forward pass (a draft model's own cache).

``open_cache(model)`` is how the loop and the drafters get a cache: this eager one, or the
compiled static path's ``StaticCachedModel`` (same verbs) when ``pass_ref.static_model``
set the model up.

Invariant after every call: ``len(self.tokens) == self.cache.get_seq_length()``.
Transformers 5 API: the cache is passed as ``cache=``, positions follow from the cache
length, ``crop(-k)`` removes the last k positions.

Shapes: ``P`` cached positions, ``T`` new tokens, ``M`` extra vectors, ``D`` hidden size,
``V`` vocabulary.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import DynamicCache

from .checks import context_length, context_name
from .layer_inputs import added_to_layers


def input_device(model) -> torch.device:
    """Where token ids must live: the input embedding's device (works with device_map)."""
    return model.get_input_embeddings().weight.device


@dataclass
class ExtraInputs:
    """Input vectors that follow a call's real tokens and leave no KV behind.

    ``position_ids`` and ``attention_mask`` (given together) replace the default layout
    (positions continue the cache, attention is causal); ``layer_delta`` is added to the
    extra positions' input of every decoder layer (deep look-ahead, ``pass_ref.layer_inputs``).
    """

    embeds: torch.Tensor  # (M, D)
    position_ids: torch.Tensor | None = None  # (1, T + M)
    attention_mask: torch.Tensor | None = None  # additive (1, 1, T + M, P + T + M)
    layer_delta: torch.Tensor | None = None  # (num_layers, M, D)

    def __post_init__(self) -> None:
        if (self.position_ids is None) != (self.attention_mask is None):
            raise ValueError("give position_ids and attention_mask together (a custom layout needs both)")


def cache_keyword(model) -> str:
    """The keyword the model's forward takes its KV cache by: ``cache`` (transformers >= 5.2x) or
    ``past_key_values`` (earlier releases, e.g. the one vLLM's CPU build pins)."""
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


class CachedModel:
    """A frozen causal LM with its KV cache and call counters."""

    def __init__(self, model, cache=None) -> None:
        self.model = model
        self.cache_keyword = cache_keyword(model)
        self.cache = DynamicCache(config=model.config) if cache is None else cache
        self.tokens: list[int] = []  # ids whose KV is in the cache, in order
        self.device = input_device(model)
        self.max_positions = context_length(model)
        self.calls = 0  # forward passes made
        self.call_sizes: list[int] = []  # inputs (tokens + extra vectors) of each call

    @property
    def length(self) -> int:
        return len(self.tokens)

    def forward(self, tokens: Sequence[int], extra: ExtraInputs | None = None, *, keep: int | None = None) -> torch.Tensor:
        """Logits for ``tokens`` (then ``extra``), appending the tokens' KV.

        Args:
            tokens: T >= 1 ids with no KV yet (the cache's continuation).
            extra: optional inputs placed after the tokens; their KV is discarded before returning.
            keep: compute logits for the last ``keep`` tokens only (and every extra input):
                the LM head is a large share of a call over a long prompt. None keeps all.
        Returns:
            (T + M, V) logits, or (keep + M, V); row i predicts the token after its input.
        """
        tokens = list(tokens)
        T, M = len(tokens), 0 if extra is None else extra.embeds.shape[0]
        if T == 0:
            raise ValueError("forward needs at least one new token")
        if self.max_positions is not None and self.length + T + M > self.max_positions:
            raise ValueError(f"sequence of {self.length + T + M} positions exceeds {context_name(self.model)} of {self.max_positions}")
        if keep is not None and not 1 <= keep <= T:
            raise ValueError(f"keep must be in 1..{T}, got {keep}")
        ids = torch.tensor([tokens], dtype=torch.long, device=self.device)  # (1, T)
        logits = self._call(ids, extra, keep)  # (T + M or keep + M, V)
        self.calls += 1
        self.call_sizes.append(T + M)
        self.tokens.extend(tokens)
        if M:
            self.cache.crop(-M)  # look-ahead KV is never kept
        self._check()
        return logits

    def _call(self, ids: torch.Tensor, extra: ExtraInputs | None, keep: int | None) -> torch.Tensor:
        """One eager forward on the dynamic cache; ``StaticCachedModel`` replaces it."""
        M = 0 if extra is None else extra.embeds.shape[0]
        kwargs = {self.cache_keyword: self.cache, "use_cache": True}
        T = ids.shape[1]
        if keep is not None and keep < T:
            # Rows as an index tensor, not the int ``keep + M``: transformers slices an int as
            # ``hidden[:, -k:]``, a view whose batch stride still spans all T + M rows, and
            # PyTorch's matmul then multiplies it by a materialised copy of the transposed LM
            # head (every call in bfloat16 on CPU: 0.46 s for Qwen2.5-0.5B's 136M-weight head
            # instead of 0.01 s). Indexing gives a compact (1, keep + M, D) block.
            kwargs["logits_to_keep"] = torch.arange(T - keep, T + M, device=self.device)  # (keep + M,)
        if extra is None:
            return self.model(input_ids=ids, **kwargs).logits[0]
        if extra.position_ids is not None:
            kwargs.update(position_ids=extra.position_ids, attention_mask=extra.attention_mask)
        embeds = self.model.get_input_embeddings()(ids)  # (1, T, D)
        vectors = extra.embeds.to(dtype=embeds.dtype, device=embeds.device)[None]  # (1, M, D)
        with added_to_layers(self.model, extra.layer_delta):
            return self.model(inputs_embeds=torch.cat([embeds, vectors], dim=1), **kwargs).logits[0]

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
        cached = int(self.cache.get_seq_length())
        if cached != self.length:
            raise RuntimeError(f"KV cache holds {cached} positions but {self.length} tokens are tracked")


def open_cache(model) -> CachedModel:
    """A fresh cache for one decode: the compiled static cache if ``pass_ref.static`` set one up, else eager.

    ``static_model(model)`` returns a copy with ``.pass_ref_static``; everything else (the loop,
    the drafters) only ever sees the ``CachedModel`` verbs.
    """
    static = getattr(model, "pass_ref_static", None)
    return CachedModel(model) if static is None else static.open()
