"""Classic speculative sampling (Leviathan et al. 2023; Chen et al. 2023): a second model drafts.

A smaller model with the target's tokenizer drafts K tokens one at a time with its own KV
cache, which is cropped back to the common prefix with the sequence before each iteration.
"""

from __future__ import annotations

import torch

from ..cache import open_cache
from ..checks import check_same_vocabulary, positive_int
from ..sampling import logits_to_probs, sample
from .base import Draft, Drafter, DraftState


class DraftModelDrafter(Drafter):
    """K drafts sampled autoregressively from ``draft_model``."""

    def __init__(self, model, draft_model, K: int) -> None:
        check_same_vocabulary(draft_model, model)
        self.cached = open_cache(draft_model)  # a compiled draft model gets its static cache
        self.max_drafts = self.positions_ahead = positive_int("num_draft_tokens", K)

    @property
    def model_calls(self) -> int:
        return self.cached.calls

    def propose(self, state: DraftState) -> Draft:
        K = min(self.max_drafts, state.room)
        if K == 0:
            return state.no_draft()
        feed = self.cached.sync(state.sequence)  # reuse the draft cache up to the common prefix
        tokens, probs = [], []
        for _ in range(K):
            p = logits_to_probs(self.cached.forward(feed, keep=1)[-1], state.sampling)  # (V,)
            x = sample(p, state.generator)
            tokens.append(x)
            probs.append(p)
            feed = [int(x)]
        return Draft(tokens=torch.stack(tokens), probs=torch.stack(probs))  # (K,), (K, V)
