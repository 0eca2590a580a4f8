"""Back-of-the-envelope theory: expected tokens per call and predicted speed-ups.

Model (Leviathan et al. 2023, §3.1; PaSS paper §2): each draft is accepted with
probability alpha, independently, and checking stops at the first rejection. With k
drafts the number accepted, a, has

    E[a] = alpha + alpha^2 + ... + alpha^k = alpha (1 - alpha^k) / (1 - alpha).

Measured acceptance per position alpha_i = P(a >= i) gives the same expectation without the
independence assumption: E[a] = alpha_1 + ... + alpha_k.

One **PaSS** iteration makes 2 calls (drafting, validation) and yields 1 exact token +
a accepted drafts + 1 corrected/bonus token, so tokens per call = (2 + E[a]) / 2,
at most (L + 2) / 2. With t(m) the latency of one forward pass over m new tokens, the
drafting and validation calls each cover about L + 1 positions, so

    speed-up over autoregressive = (2 + E[a]) t(1) / (2 t(L + 1)).

Classic speculative sampling with a draft model costing c_d t(1) per token makes
(1 + E[a]) tokens per iteration for k c_d t(1) + t(k + 1).
"""

from __future__ import annotations

from typing import Sequence

import torch


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"the number of drafts must be an int >= 0, got {k!r}")


def expected_accepted(alpha: float, k: int) -> float:
    """E[a] for k drafts each accepted with probability alpha (stop at the first rejection)."""
    _check_alpha(alpha)
    _check_k(k)
    return sum(alpha**i for i in range(1, k + 1))


def pass_tokens_per_iteration(alpha: float, num_lookahead: int) -> float:
    """PaSS: 1 exact token + E[a] accepted drafts + 1 corrected or bonus token."""
    return 2.0 + expected_accepted(alpha, num_lookahead)


def pass_tokens_per_call(alpha: float, num_lookahead: int) -> float:
    """PaSS tokens per model call, (2 + E[a]) / 2; at alpha = 1 the ceiling (L + 2) / 2."""
    return pass_tokens_per_iteration(alpha, num_lookahead) / 2.0


def tokens_per_iteration_from_acceptance(acceptance: Sequence[float], *, exact_token: bool = True) -> float:
    """Tokens per iteration from measured per-position acceptance alpha_i = P(a >= i).

    ``exact_token``: PaSS's drafting call also yields one exact token (True); a draft
    model does not (False).
    """
    if any(not 0.0 <= a <= 1.0 for a in acceptance):
        raise ValueError("acceptance rates must lie in [0, 1]")
    return (2.0 if exact_token else 1.0) + float(sum(acceptance))


def pass_speedup(alpha: float, num_lookahead: int, cost_ratio: float) -> float:
    """Predicted PaSS speed-up over autoregressive decoding.

    ``cost_ratio`` = t(L + 1) / t(1): the latency of a forward pass over L + 1 new tokens
    relative to one token (about 1 while decoding is memory-bound).
    """
    if cost_ratio <= 0:
        raise ValueError(f"cost_ratio must be positive, got {cost_ratio}")
    return pass_tokens_per_iteration(alpha, num_lookahead) / (2.0 * cost_ratio)


def implied_acceptance(speedup: float, num_lookahead: int, cost_ratio: float = 1.0) -> tuple[float, float | None]:
    """What a reported two-call PaSS speed-up implies: ``(E[a], alpha)``.

    Inverts ``speed-up = (2 + E[a]) / (2 cost_ratio)`` (cost_ratio = t(L + 1) / t(1)):
    E[a] = 2 speed-up cost_ratio - 2. ``alpha`` is the constant per-position acceptance
    (P(a >= i) = alpha^i) whose E[a] = sum_i alpha^i matches, found by bisection; None when
    no alpha in [0, 1] does (E[a] < 0 or E[a] > L).
    """
    if speedup <= 0 or cost_ratio <= 0:
        raise ValueError("speedup and cost_ratio must be positive")
    _check_k(num_lookahead)
    accepted = 2.0 * speedup * cost_ratio - 2.0
    if accepted < 0 or accepted > num_lookahead:
        return accepted, None
    low, high = 0.0, 1.0
    for _ in range(200):  # expected_accepted is increasing in alpha
        mid = (low + high) / 2
        low, high = (mid, high) if expected_accepted(mid, num_lookahead) < accepted else (low, mid)
    return accepted, (low + high) / 2


def speculative_speedup(alpha: float, k: int, cost_ratio: float, draft_cost: float) -> float:
    """Predicted speed-up of classic speculative sampling with a separate draft model.

    ``cost_ratio`` = t(k + 1) / t(1) for the target; ``draft_cost`` = one draft-model
    call relative to one target call of a single token.
    """
    if cost_ratio <= 0 or draft_cost < 0:
        raise ValueError("cost_ratio must be positive and draft_cost non-negative")
    return (1.0 + expected_accepted(alpha, k)) / (k * draft_cost + cost_ratio)


def simulate_pass_tokens_per_iteration(alpha: float, num_lookahead: int, iterations: int, generator: torch.Generator) -> float:
    """Monte-Carlo estimate of ``pass_tokens_per_iteration``: draw r_i ~ U[0,1), accept while r_i < alpha."""
    _check_alpha(alpha)
    _check_k(num_lookahead)
    r = torch.rand(iterations, num_lookahead, generator=generator, dtype=torch.float64)  # (N, L)
    accepted = (r < alpha).to(torch.int64).cumprod(dim=1).sum(dim=1)  # (N,) prefix length n
    return float(2.0 + accepted.double().mean())


def decoding_cost(num_params: int, bytes_per_param: float, new_tokens: int = 1) -> dict:
    """Bytes read and FLOPs of one forward pass over ``new_tokens`` tokens (weights only, no KV).

    Every weight is read once per pass whatever the number of tokens, while the
    arithmetic grows with it (about 2 FLOPs per parameter per token): the arithmetic
    intensity (FLOPs per byte) of one-token decoding is tiny, so it is memory-bound.
    """
    if num_params <= 0 or bytes_per_param <= 0 or new_tokens < 1:
        raise ValueError("num_params, bytes_per_param and new_tokens must be positive")
    bytes_read = num_params * bytes_per_param
    flops = 2.0 * num_params * new_tokens
    return {"bytes": bytes_read, "flops": flops, "flops_per_byte": flops / bytes_read}
