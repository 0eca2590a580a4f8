"""Prompt lookup drafting (Saxena 2023) and the hybrid with PaSS.

``PromptLookupDrafter`` copies the tokens that followed the latest earlier occurrence of
the sequence's last n-gram. No model call; the draft distribution is one-hot on the copied
token, which the rule handles exactly (accept with probability q(x̃), resample from q
without x̃ otherwise). ``HybridDrafter`` uses prompt lookup when the n-gram matches and
another drafter (PaSS) otherwise.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..checks import positive_int, vocab_size
from .base import Draft, Drafter, DraftState


def find_continuation(sequence: Sequence[int], k: int, max_ngram: int) -> list[int]:
    """Up to K tokens that followed an earlier occurrence of the sequence's last n-gram.

    Tries n = max_ngram .. 1 and stops at the first n that occurs earlier (a longer
    n-gram is better evidence). Among its occurrences it takes the latest one that is
    followed by k tokens, else the one followed by the most.
    """
    length = len(sequence)
    for n in range(min(max_ngram, length - 1), 0, -1):
        tail = list(sequence[length - n :])
        best: list[int] = []
        for start in range(length - n - 1, -1, -1):  # latest first; start + n < length
            if sequence[start] == tail[0] and list(sequence[start : start + n]) == tail:
                follow = list(sequence[start + n : start + n + k])
                if len(follow) > len(best):
                    best = follow
                if len(best) == k:
                    break
        if best:
            return best
    return []


class PromptLookupDrafter(Drafter):
    """Up to K drafts copied from the context; no model call."""

    def __init__(self, K: int, max_ngram: int = 3, *, name: str = "num_draft_tokens") -> None:
        self.max_drafts = self.positions_ahead = positive_int(name, K)
        self.max_ngram = positive_int("max_ngram", max_ngram)

    def propose(self, state: DraftState) -> Draft:
        K = min(self.max_drafts, state.room)
        copied = find_continuation(state.sequence, K, self.max_ngram) if K > 0 else []
        if not copied:
            return state.no_draft()
        tokens = torch.tensor(copied, dtype=torch.long, device=state.target.device)  # (K,)
        probs = torch.zeros(len(copied), vocab_size(state.target.model), device=tokens.device)  # (K, V): a copy is certain
        probs.scatter_(1, tokens[:, None], 1.0)
        return Draft(tokens=tokens, probs=probs)


class HybridDrafter(Drafter):
    """Prompt lookup when the last n-gram occurred before, ``fallback`` otherwise.

    What the fallback adds to the validation call (one-call PaSS's groups) rides along in
    every call (``ride_along="always"``: look-ahead drafts are then ready whenever the next
    lookup finds nothing) or only in calls whose drafts were not copied (``"miss"``:
    cheaper calls, but a miss right after a hit has no drafts).
    """

    def __init__(self, lookup: PromptLookupDrafter, fallback: Drafter, ride_along: str = "always") -> None:
        if ride_along not in ("miss", "always"):
            raise ValueError(f"ride_along must be 'miss' or 'always', got {ride_along!r}")
        self.lookup, self.fallback, self.ride_along = lookup, fallback, ride_along
        self.max_drafts = max(lookup.max_drafts, fallback.max_drafts)
        self.positions_ahead = self.max_drafts + fallback.positions_ahead - fallback.max_drafts
        self.copied = False  # did this iteration's drafts come from lookup?

    @property
    def model_calls(self) -> int:
        return self.fallback.model_calls

    def propose(self, state: DraftState) -> Draft:
        copied = self.lookup.propose(state)
        self.copied = copied.tokens.shape[0] > 0
        return copied if self.copied else self.fallback.propose(state)

    def extra_inputs(self, target, num_pending: int, K: int):
        if self.copied and self.ride_along == "miss":
            return None
        return self.fallback.extra_inputs(target, num_pending, K)

    def on_verified(self, a: int, length: int, extra_logits: torch.Tensor) -> None:
        self.fallback.on_verified(a, length, extra_logits)
