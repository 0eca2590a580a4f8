"""PaSS's drafting call (Algorithm 1, step 1): the target itself reads [LA]_1..[LA]_L.

One target call on the uncached tokens followed by the L look-ahead vectors. Its output at
the last real position is the exact next-token law q, so the call also yields
x_{n+1} ~ q, which is committed unconditionally (``Draft.exact``; it is *not* a draft).
Its outputs at the look-ahead positions are p_LA,1..p_LA,L, from which the drafts are
sampled. The look-ahead positions' KV is cropped right after the call. The same drafter
with untrained UNK vectors is the paper's "[UNK] look-ahead" baseline.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..cache import CachedModel, ExtraInputs
from ..checks import check_L, prompt_ids
from ..sampling import logits_to_probs, sample
from .base import Draft, Drafter, DraftState


def drafting_call(target: CachedModel, lookahead, vectors: torch.Tensor, pending: Sequence[int],
                  layer_delta: torch.Tensor | None = None) -> torch.Tensor:
    """One target call on ``pending`` (>= 1 tokens without KV) followed by ``vectors`` (K, D).

    Returns (K + 1, V) logits: row 0 is q(. | x_1..x_n), rows 1..K are p_LA,1..p_LA,K.
    Deep look-ahead vectors, if the set has them, are added inside the layers
    (``layer_delta``: the set's ``layer_delta(arange(K))``, computed here when not given).
    """
    K = vectors.shape[0]
    if layer_delta is None:
        layer_delta = lookahead.layer_delta(torch.arange(K))
    return target.forward(pending, ExtraInputs(vectors, layer_delta=layer_delta), keep=1)  # (K+1, V)


class LookaheadDrafter(Drafter):
    """Two-call PaSS: the drafting call proposes L drafts and yields x_{n+1}."""

    def __init__(self, model, lookahead, L: int | None = None) -> None:
        lookahead.check_compatible(model)
        self.lookahead = lookahead
        self.vectors = lookahead.drafting_inputs(model, None if L is None else check_L(L))  # (L, D)
        self.L = self.max_drafts = self.positions_ahead = self.vectors.shape[0]
        delta = lookahead.layer_delta(torch.arange(self.L))  # (num_layers, L, D) deep vectors, once, in the model's dtype
        self.delta = None if delta is None else delta.detach().to(self.vectors.dtype)

    def propose(self, state: DraftState) -> Draft:
        K = max(0, min(self.L, state.room - 1))  # x_{n+1} is one more token of this iteration
        pending = state.sequence[state.target.length :]  # real tokens without KV (>= 1)
        delta = None if self.delta is None or K == 0 else self.delta[:, :K]
        logits = drafting_call(state.target, self.lookahead, self.vectors[:K], pending, delta)  # (K+1, V)
        probs = logits_to_probs(logits, state.sampling)  # (K+1, V)
        tokens = sample(probs, state.generator)  # (K+1,)
        return Draft(tokens=tokens[1:], probs=probs[1:], exact=tokens[0])


def lookahead_logits(model, lookahead, input_ids, num_lookahead: int | None = None) -> torch.Tensor:
    """The (L + 1, V) logits of one drafting call after ``input_ids`` (row 0 = q, rows 1..L = p_LA).

    The one way to look at what a look-ahead set drafts: the drafter, the evaluation and
    the training's held-out metrics all go through ``drafting_call``.
    """
    lookahead.check_compatible(model)
    ids = prompt_ids(input_ids, model)
    with torch.inference_mode():
        return drafting_call(CachedModel(model), lookahead, lookahead.drafting_inputs(model, num_lookahead), ids)
