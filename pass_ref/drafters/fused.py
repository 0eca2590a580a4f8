"""One-call PaSS: the next drafting call rides along with the validation call.

Not in the paper, whose Algorithm 1 makes two target calls per iteration. Here the
validation input is followed by look-ahead *groups*:

    [ y, d_1 .. d_K,   G_a for a in A ]       G_a = [LA]_1 .. [LA]_L

y is the token committed last (the only real token without KV), d_1..d_K the drafts, and
A a set of candidate numbers of accepted drafts (0 <= a <= K). Group G_a sees the cached
prefix, y, d_1..d_a and, causally, itself; never another group, never d_{a+1..K}. Its
position ids continue from d_a. So the outputs of G_a are exactly those of the paper's
drafting call made on the sequence that ends at d_a (tested to float32 round-off).

After verification keeps a drafts and samples z, the sequence ends at ``d_a, z``. If a is
in A, the rows of G_n are that drafting call's look-ahead rows: drafts for the tokens after
z. The next call is again ``[z, e_1..e_L] + groups``: 1 + a tokens per call, against
(2 + a) / 2 for the two-call loop. If a is not in A the next call has no drafts and is
``[z] + G_0``: the paper's drafting call, which yields one token and the next drafts.
So A = {} (no group) is the paper's two calls exactly, and every other A trades larger
calls for fewer drafting calls (``pass_ref.experiments.latency.best_groups`` picks A from
a set's acceptance and the machine's t(n)).

Exactness: the drafts e_i are sampled from p_LA,i, which depends only on the sequence up
to d_n, not on z nor on the uniforms that chose z, and verification compares q with
exactly that p_LA,i: the condition of the speculative-sampling theorem.

Shapes: ``P`` cached positions, ``T`` real inputs (pending tokens + drafts), ``G`` groups,
``L`` look-ahead tokens per group, ``Q = T + G L`` inputs of the call, ``V`` vocabulary.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..cache import ExtraInputs
from ..checks import check_L
from ..sampling import logits_to_probs, sample
from .base import Draft, Drafter, DraftState


def group_position_ids(past: int, num_pending: int, num_drafts: int, parents: Sequence[int], L: int) -> torch.Tensor:
    """(Q,) position ids: real inputs take ``past .. past + T - 1``; [LA]_i of G_a sits i places after d_a."""
    T = num_pending + num_drafts
    last = past + num_pending - 1  # position of the last pending token (y)
    return torch.cat([torch.arange(past, past + T), *(last + a + torch.arange(1, L + 1) for a in parents)])  # (Q,)


def group_attention_mask(past: int, num_pending: int, num_drafts: int, parents: Sequence[int], L: int, *,
                         dtype=torch.float32, device=None) -> torch.Tensor:
    """Additive (1, 1, Q, P + Q) mask: 0 where attention is allowed, the dtype's minimum elsewhere.

    Real rows are causal. A row of group G_a sees the P cached positions, the pending
    tokens, d_1..d_a and the earlier rows of its own group.
    """
    T, Q = num_pending + num_drafts, num_pending + num_drafts + len(parents) * L
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
    """Validate a group set: None (every a) or distinct ints in 0..L (empty: the paper's two calls), returned sorted."""
    if groups is None:
        return None
    if isinstance(groups, str):
        raise TypeError(f"groups must be an iterable of ints or None, got {groups!r} (the benchmark's 'auto' is resolved "
                        "by pass_ref.experiments.latency.best_groups before a drafter is built)")
    try:
        values = sorted(set(groups))
    except TypeError:
        raise TypeError(f"groups must be an iterable of ints or None, got {groups!r}") from None
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in values):
        raise TypeError(f"groups must hold ints, got {groups!r}")
    if values and (values[0] < 0 or values[-1] > L):
        raise ValueError(f"group parents must be in 0..L = 0..{L}, got {values}")
    return tuple(values)


class FusedLookaheadDrafter(Drafter):
    """PaSS in one call per iteration: drafts come from the previous call's group G_n.

    ``groups``: the candidate numbers of accepted drafts that get a group (None: every
    a = 0..min(K, L), right where t(n) is flat; ``()``: none, the paper's two calls). Fewer
    groups make each call cheaper; a missing a costs one drafting call.
    """

    def __init__(self, model, lookahead, L: int | None = None, groups=None) -> None:
        lookahead.check_compatible(model)
        self.lookahead = lookahead
        self.vectors = lookahead.drafting_inputs(model, None if L is None else check_L(L))  # (L, D)
        self.L = self.max_drafts = self.vectors.shape[0]
        self.positions_ahead = 2 * self.L  # L drafts, then a group reaches L places past d_L
        self.groups = check_groups(groups, self.L)
        self._parents: list[int] = []  # the a of each group in the last call
        self._next: tuple[int, torch.Tensor] | None = None  # (sequence length, (L, V) logits of G_n)

    def parents(self, K: int) -> list[int]:
        """Which a in 0..K get a group in a call with K drafts (none: G_0, the drafting call)."""
        if K == 0:
            return [0]
        if self.groups is None:
            return list(range(min(K, self.L) + 1))
        return [a for a in self.groups if a <= K]

    def propose(self, state: DraftState) -> Draft:
        """Up to ``room`` drafts sampled from the look-ahead rows the last call left for this sequence."""
        K = min(self.L, state.room)
        if self._next is None or self._next[0] != len(state.sequence) or K == 0:
            return state.no_draft()
        probs = logits_to_probs(self._next[1][:K], state.sampling)  # (K, V) p_LA,1..p_LA,K
        self._next = None
        return Draft(tokens=sample(probs, state.generator), probs=probs)

    def extra_inputs(self, target, num_pending: int, K: int) -> ExtraInputs | None:
        """The groups G_a, a in ``parents(K)``, with their positions, mask and deep hooks."""
        self._parents = self.parents(K)
        G, L = len(self._parents), self.L
        if G == 0:
            return None
        past = target.length
        positions = group_position_ids(past, num_pending, K, self._parents, L).to(target.device)[None]  # (1, Q)
        mask = group_attention_mask(past, num_pending, K, self._parents, L, dtype=self.vectors.dtype, device=target.device)
        slots = torch.arange(L).repeat(G)  # which [LA]_i sits at each group row
        return ExtraInputs(self.vectors.repeat(G, 1), positions, mask, self.lookahead.layer_delta(slots))  # (G L, D)

    def on_verified(self, a: int, length: int, extra_logits: torch.Tensor) -> None:
        """Keep the rows of G_a (if a had a group): the drafts of the next iteration."""
        parents = self._parents if extra_logits.shape[0] else []  # no rows: the groups did not ride along
        self._next = None
        if a in parents:
            groups = extra_logits.view(len(parents), self.L, -1)  # (G, L, V)
            self._next = (length, groups[parents.index(a)])
