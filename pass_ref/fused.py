"""One-call PaSS: the next drafting call rides along with the validation call.

Not in the paper. The paper's Algorithm 1 makes two target calls per iteration: a
drafting call on ``[x, [LA]_1..[LA]_L]`` and a validation call on ``[x_{n+1}, x̃_1..x̃_L]``.
Here both happen in one call. Its input is the validation input followed by look-ahead
*groups*:

    [ y, d_1 .. d_K,   G_a for a in A ]       G_a = [LA]_1 .. [LA]_L

y is the token committed last (the only real token without KV), d_1..d_K the drafts, and
A a set of candidate numbers of accepted drafts (0 <= a <= K). Group G_a sees the cached
prefix, y, d_1..d_a and, causally, itself; never another group, never d_{a+1..K}. Its
position ids continue from d_a. So the outputs of G_a are exactly those of the paper's
drafting call made on the sequence that ends at d_a (tested to float32 round-off).

After verification accepts n drafts and samples z (residual or bonus), the sequence ends
at ``d_n, z``. If n is in A, the outputs of G_n are that drafting call's look-ahead rows:
drafts for the tokens after z, from the same p_LA the paper's loop would use. The next
call is again ``[z, e_1..e_L] + groups``: one call per iteration and 1 + n tokens per
call, against (2 + n) / 2 for the two-call loop. If n is not in A there are no drafts for
the next call, which is then ``[z] + groups`` (one token, still exact). Groups and
rejected drafts never stay in the KV cache.

Exactness: the drafts e_i are sampled from p_LA,i, which depends only on the sequence up
to d_n (not on z); verification compares q with exactly that p_LA,i. This is the
condition of the speculative-sampling theorem, as in the two-call loop.

Shapes: ``P`` cached positions, ``T`` real inputs (pending tokens + drafts), ``G`` groups,
``L`` look-ahead tokens per group, ``Q = T + G L`` inputs of the call, ``V`` vocabulary.
Notebook: ``07_beyond_the_paper`` draws the mask.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .cache import CachedModel
from .drafters import Draft, empty_draft
from .lookahead import LookaheadEmbeddings, check_num_lookahead
from .sampling import SamplingConfig, logits_to_probs, sample


def group_position_ids(past: int, num_pending: int, num_drafts: int, parents: Sequence[int], L: int) -> torch.Tensor:
    """(Q,) position ids of one fused call.

    Real inputs take ``past .. past + T - 1``; [LA]_i of group G_a sits i places after
    d_a (after the last pending token when a = 0), like in a drafting call made there.
    """
    T = num_pending + num_drafts
    real = torch.arange(past, past + T)  # (T,)
    last = past + num_pending - 1  # position of the last pending token (y)
    groups = [last + a + torch.arange(1, L + 1) for a in parents]  # G x (L,)
    return torch.cat([real, *groups]) if groups else real


def group_attention_mask(
    past: int, num_pending: int, num_drafts: int, parents: Sequence[int], L: int, *, dtype=torch.float32, device=None
) -> torch.Tensor:
    """Additive (1, 1, Q, P + Q) mask of one fused call: 0 where attention is allowed, the
    dtype's minimum elsewhere.

    Real rows are causal. A row of group G_a sees the P cached positions, the pending
    tokens, d_1..d_a and the earlier rows of its own group.
    """
    T = num_pending + num_drafts
    G = len(parents)
    Q = T + G * L
    allowed = torch.zeros(Q, past + Q, dtype=torch.bool, device=device)  # (Q, P + Q)
    allowed[:, :past] = True
    allowed[:T, past : past + T] = torch.tril(torch.ones(T, T, dtype=torch.bool, device=device))
    own = torch.tril(torch.ones(L, L, dtype=torch.bool, device=device))  # (L, L) causal within a group
    for g, a in enumerate(parents):
        if not 0 <= a <= num_drafts:
            raise ValueError(f"group parent a={a} must be in 0..{num_drafts} (the number of drafts)")
        rows = slice(T + g * L, T + (g + 1) * L)
        allowed[rows, past : past + num_pending + a] = True  # pending tokens and d_1..d_a
        allowed[rows, past + T + g * L : past + T + (g + 1) * L] = own
    mask = torch.zeros(Q, past + Q, dtype=dtype, device=device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]  # (1, 1, Q, P + Q)


def check_groups(groups, L: int) -> tuple[int, ...] | None:
    """Validate a group set: None (every a) or distinct ints in 0..L, returned sorted."""
    if groups is None:
        return None
    try:
        values = sorted(set(groups))
    except TypeError:
        raise TypeError(f"groups must be an iterable of ints or None, got {groups!r}") from None
    if not values or not all(isinstance(a, int) and not isinstance(a, bool) for a in values):
        raise TypeError(f"groups must hold at least one int, got {groups!r}")
    if values[0] < 0 or values[-1] > L:
        raise ValueError(f"group parents must be in 0..L = 0..{L}, got {values}")
    return tuple(values)


class FusedLookaheadDrafter:
    """PaSS in one call per iteration: drafts come from the previous call's group G_n.

    ``groups``: the candidate numbers of accepted drafts that get a group (None: every
    a = 0..min(K, L)). Fewer groups make each call cheaper; a missing a only costs drafts.
    """

    yields_exact_token = False  # the exact token is the verification's residual/bonus sample
    fused = True

    def __init__(self, model, lookahead: LookaheadEmbeddings, num_lookahead: int | None = None, groups=None) -> None:
        lookahead.check_compatible(model)
        L = lookahead.num_lookahead if num_lookahead is None else num_lookahead
        check_num_lookahead(L)
        if L > lookahead.num_lookahead:
            raise ValueError(f"num_lookahead={L} but only {lookahead.num_lookahead} look-ahead embeddings exist")
        self.model = model
        self.lookahead = lookahead
        self.L = L
        self.groups = check_groups(groups, L)
        self.vectors = lookahead.drafting_inputs(model, L)  # (L, D)
        self._pending: tuple[int, torch.Tensor] | None = None  # (sequence length, (L, V) logits of G_n)
        self._groups: dict[int, torch.Tensor] = {}  # a -> (L, V) logits of G_a in the last call

    @property
    def model_calls(self) -> int:
        return 0  # every call is a target call, counted by the target's cache

    def parents(self, num_drafts: int) -> list[int]:
        """Which a in 0..K get a group in a call with K drafts (None: every a <= L)."""
        if self.groups is None:
            return list(range(min(num_drafts, self.L) + 1))
        return [a for a in self.groups if a <= num_drafts]

    def draft(self, target: CachedModel, sequence, k: int, sampling: SamplingConfig, generator) -> Draft:
        """Up to k drafts sampled from the look-ahead rows the last call left for this sequence."""
        if self._pending is None or self._pending[0] != len(sequence) or k == 0:
            return empty_draft(target)
        probs = logits_to_probs(self._pending[1][:k], sampling)  # (k, V) p_LA,1..p_LA,k
        self._pending = None
        return Draft(tokens=sample(probs, generator), probs=probs)

    def validation_call(self, target: CachedModel, pending: list[int], draft_ids: list[int], *, with_groups: bool = True) -> torch.Tensor:
        """One call on ``pending + drafts + groups``; returns the (K+1, V) rows q_1..q_{K+1}.

        The group rows are kept until ``accepted(n, length)`` says which one is needed.
        ``with_groups=False`` makes a plain validation call (the hybrid's lookup iterations).
        """
        K, L = len(draft_ids), self.L
        parents = self.parents(K) if with_groups else []
        if not parents:
            self._groups = {}
            return target.forward(pending + draft_ids, keep=K + 1)  # (K+1, V)
        past = target.length
        dtype = self.vectors.dtype
        positions = group_position_ids(past, len(pending), K, parents, L).to(target.device)[None]  # (1, Q)
        mask = group_attention_mask(past, len(pending), K, parents, L, dtype=dtype, device=target.device)
        extra = self.vectors.repeat(len(parents), 1)  # (G L, D)
        slots = torch.arange(L).repeat(len(parents))  # which [LA]_i sits at each group row
        with self.lookahead.applied(target.model, slots):
            logits = target.forward(
                pending + draft_ids, extra_embeds=extra, position_ids=positions, attention_mask=mask, keep=K + 1 + len(parents) * L
            )  # (K+1 + G L, V)
        self._groups = dict(zip(parents, logits[K + 1 :].view(len(parents), L, -1)))  # a -> (L, V)
        return logits[: K + 1]  # (K+1, V)

    def accepted(self, n: int, new_length: int) -> None:
        """Verification kept n drafts and the sequence now has ``new_length`` tokens."""
        rows = self._groups.get(n)
        self._pending = None if rows is None else (new_length, rows)
        self._groups = {}
