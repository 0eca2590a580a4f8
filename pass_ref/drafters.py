"""Drafters: who proposes the tokens that verification checks.

One interface, two implementations (ARCHITECTURE.md "one loop, many drafters"):

- ``LookaheadDrafter`` (PaSS, Algorithm 1 step 1): one *target-model* call on the
  uncached tokens followed by ``[LA]_1..[LA]_k``. Its output at the last real position
  is the exact next-token distribution q, so it also yields x_{n+1} ~ q, which is kept
  unconditionally (``Draft.exact``; it is *not* part of the draft). Its outputs at the
  look-ahead positions are p_LA,i, from which the drafts x̃_i are sampled. The same
  drafter with untrained UNK-initialised vectors is the paper's "[UNK] look-ahead"
  baseline.
- ``DraftModelDrafter`` (Leviathan et al. 2023; Chen et al. 2023): a second model with
  the same tokenizer drafts k tokens autoregressively with its own KV cache.

Autoregressive decoding is the loop with no drafter.

A drafter returns the *processed* probabilities its drafts were sampled from; the
verifier needs exactly those (PAPER.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import torch

from .cache import CachedModel
from .lookahead import LookaheadEmbeddings
from .sampling import SamplingConfig, logits_to_probs, sample


@dataclass
class Draft:
    """What a drafter proposes for one iteration."""

    tokens: torch.Tensor  # (K,) int64 draft tokens x̃_1..x̃_K
    probs: torch.Tensor  # (K, V) processed distributions they were sampled from
    exact: torch.Tensor | None = None  # 0-d: PaSS's x_{n+1} ~ q, kept whatever happens


class Drafter(Protocol):
    """Proposes up to ``k`` draft tokens after ``sequence``."""

    yields_exact_token: bool  # True if ``draft`` also returns an exact sample from q

    def draft(
        self, target: CachedModel, sequence: Sequence[int], k: int, sampling: SamplingConfig, generator: torch.Generator | None
    ) -> Draft: ...

    @property
    def model_calls(self) -> int: ...


class LookaheadDrafter:
    """PaSS drafting call: the target itself reads ``[LA]_1..[LA]_k`` (Algorithm 1, step 1)."""

    yields_exact_token = True  # row 0 of its call is q itself: x_{n+1} is committed, not verified

    def __init__(self, model, lookahead: LookaheadEmbeddings) -> None:
        lookahead.check_compatible(model)
        self.model = model
        self.lookahead = lookahead
        self.vectors = lookahead.drafting_inputs(model, lookahead.num_lookahead)  # (L, D)

    @property
    def model_calls(self) -> int:
        return 0  # its calls are target calls, counted by the target's cache

    def draft(self, target, sequence, k, sampling, generator) -> Draft:
        pending = sequence[target.length :]  # real tokens without KV (>= 1)
        # 1. One forward pass over [pending..., LA_1..LA_k]; the LA positions' KV is
        #    cropped inside CachedModel.forward right after the call.
        #    Deep look-ahead vectors (if any) are added inside the layers at the k LA positions.
        with self.lookahead.applied(target.model, torch.arange(k)):
            logits = target.forward(pending, extra_embeds=self.vectors[:k])[-(k + 1) :]  # (k+1, V)
        # 2. Row 0 is q(. | x_1..x_n): the exact next token. Rows 1..k are p_LA,1..p_LA,k.
        probs = logits_to_probs(logits, sampling)  # (k+1, V)
        tokens = sample(probs, generator)  # (k+1,)
        return Draft(tokens=tokens[1:], probs=probs[1:], exact=tokens[0])


class DraftModelDrafter:
    """Classic speculative sampling: a smaller model drafts k tokens one at a time."""

    yields_exact_token = False

    def __init__(self, draft_model) -> None:
        self.cached = CachedModel(draft_model)

    @property
    def model_calls(self) -> int:
        return self.cached.calls

    def draft(self, target, sequence, k, sampling, generator) -> Draft:
        feed = self.cached.sync(sequence)  # reuse the draft cache up to the common prefix
        tokens, probs = [], []
        for _ in range(k):
            p = logits_to_probs(self.cached.forward(feed)[-1], sampling)  # (V,)
            x = sample(p, generator)
            tokens.append(x)
            probs.append(p)
            feed = [int(x)]
        vocab = target.model.get_input_embeddings().weight.shape[0]
        if not tokens:
            empty = torch.empty(0, vocab, device=target.device)
            return Draft(tokens=torch.empty(0, dtype=torch.long, device=target.device), probs=empty)
        return Draft(tokens=torch.stack(tokens), probs=torch.stack(probs))
