"""The drafter interface: the three hooks the one loop (``pass_ref.loop``) calls.

Every drafting method is one class over ``Drafter``. In each iteration the loop calls:

1. ``propose(state) -> Draft``: up to ``state.room`` draft tokens x̃_1..x̃_K with the
   *processed* distributions p_1..p_K they were sampled from (one-hot rows for a copied
   draft), and, for PaSS, the exact token x_{n+1} its drafting call sampled from q;
2. ``extra_inputs(target, num_pending, K)``: input vectors that ride along in the
   validation call after the drafts (one-call PaSS's look-ahead groups); None by default;
3. ``on_verified(a, length, extra_logits)``: verification kept a drafts, the sequence now
   has ``length`` tokens, and ``extra_logits`` are the rows of the ride-along inputs;
   a drafter keeps from them what the next iteration needs. A no-op by default.

The defaults make ``Drafter`` itself autoregressive decoding (``NoDrafter``): no drafts,
one plain call per token. The loop never asks which drafter it runs.

Shapes: ``K`` drafts, ``V`` vocabulary, ``M`` ride-along inputs, ``D`` hidden size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..cache import CachedModel, ExtraInputs
from ..checks import vocab_size
from ..sampling import SamplingConfig


@dataclass
class Draft:
    """What a drafter proposes for one iteration."""

    tokens: torch.Tensor  # (K,) int64 draft tokens x̃_1..x̃_K
    probs: torch.Tensor  # (K, V) processed distributions they were sampled from
    exact: torch.Tensor | None = None  # 0-d: PaSS's x_{n+1} ~ q, kept whatever happens


@dataclass
class DraftState:
    """What a drafter sees when it proposes."""

    target: CachedModel  # the target and its cache (every token but the last has KV)
    sequence: list[int]  # prompt + committed tokens
    room: int  # most drafts this iteration can still use (new tokens left - 1)
    sampling: SamplingConfig  # the processing both sides of the ratio must use
    generator: torch.Generator | None

    def no_draft(self) -> Draft:
        """Zero drafts: the loop then makes one plain call and commits one exact token."""
        V, device = vocab_size(self.target.model), self.target.device
        return Draft(tokens=torch.empty(0, dtype=torch.long, device=device), probs=torch.zeros(0, V, device=device))


class Drafter:
    """Base class: proposes nothing (autoregressive decoding). Subclasses override the hooks.

    ``max_drafts`` (K) bounds the drafts of one iteration; ``positions_ahead`` the positions
    a call may reach past the committed sequence (checked against the model's context).
    """

    max_drafts = 0
    positions_ahead = 0

    @property
    def model_calls(self) -> int:
        """Forward passes of a separate draft model (calls of the target are counted by its cache)."""
        return 0

    def propose(self, state: DraftState) -> Draft:
        return state.no_draft()

    def extra_inputs(self, target: CachedModel, num_pending: int, K: int) -> ExtraInputs | None:
        return None

    def on_verified(self, a: int, length: int, extra_logits: torch.Tensor) -> None:
        return None


class NoDrafter(Drafter):
    """Autoregressive decoding: the loop with zero drafts, one target call per token."""
