"""Verification: the speculative accept / reject / residual rule.

This module is the only place that decides whether a draft token is kept, for every
method in ``pass_ref`` (PaSS, the [UNK] baseline, a draft model), greedy or sampled.

Notation (``docs/paper.md``, the paper's Algorithm 1): **q is the target model**, p is the
draft distribution (for PaSS, the look-ahead distribution p_LA,t). For draft positions
t = 1..K (0-based ``t = 0..K-1`` in code):

    accept x̃_t  with probability  min(1, q_t(x̃_t) / p_t(x̃_t))
    on the first rejection, sample from the residual  norm(max(0, q_t - p_t))  and stop
    if all K drafts are accepted, sample a bonus token from q_{K+1}

This makes the output law exactly q's (Chen et al. 2023, Theorem 1; Leviathan et al.
2023 prove it in their Appendix A.1). Both p and q must be the *processed* distributions that were really sampled
from (``pass_ref.sampling.logits_to_probs``). With greedy one-hot distributions the
rule reduces to "accept while the draft equals the target's argmax".

Shapes: ``K`` draft tokens, ``V`` vocabulary.
Notebook: ``01_speculative_sampling`` proves the rule and checks it numerically.
"""

from __future__ import annotations

import torch

from .sampling import sample


def acceptance_probs(
    target_probs: torch.Tensor, draft_probs: torch.Tensor, draft_tokens: torch.Tensor
) -> torch.Tensor:
    """min(1, q_t(x̃_t) / p_t(x̃_t)) for each draft position.

    Args:
        target_probs: (K or K+1, V) q_t; only the first K rows are read.
        draft_probs: (K, V) p_t, the distributions the drafts were sampled from.
        draft_tokens: (K,) the drafts x̃_t.
    Returns:
        (K,) acceptance probabilities; 0 where q_t(x̃_t) = 0 or p_t(x̃_t) = 0.
    """
    K = draft_tokens.shape[0]
    t = torch.arange(K, device=draft_tokens.device)
    q = target_probs[t, draft_tokens]  # (K,)
    p = draft_probs[t, draft_tokens]  # (K,)
    ratio = torch.where(p > 0, q / p.clamp_min(torch.finfo(p.dtype).tiny), 0.0)
    return ratio.clamp(max=1.0)


def residual_distribution(target_row: torch.Tensor, draft_row: torch.Tensor) -> torch.Tensor:
    """norm(max(0, q - p)): where to sample after a rejection.

    Args:
        target_row: (V,) q_t.  draft_row: (V,) p_t.
    Returns:
        (V,) a distribution with no mass where q <= p. If q <= p everywhere (only
        possible when q == p, in which case no draft is ever rejected) it returns q.
    """
    residual = (target_row - draft_row).clamp_min(0.0)  # (V,)
    total = residual.sum()
    return torch.where(total > 0, residual / total.clamp_min(torch.finfo(residual.dtype).tiny), target_row)


def verify_drafts(
    target_probs: torch.Tensor,
    draft_probs: torch.Tensor,
    draft_tokens: torch.Tensor,
    generator: torch.Generator | None = None,
) -> tuple[int, torch.Tensor]:
    """Run the accept/reject rule over one block of K drafts (Algorithm 1, step 3).

    Args:
        target_probs: (K+1, V) q(· | prefix, x̃_1..x̃_{t-1}) for t = 1..K+1.
        draft_probs: (K, V) processed draft distributions p_t.
        draft_tokens: (K,) int64 drafts, x̃_t ~ p_t.
        generator: source of the uniforms r_t and of the replacement/bonus sample.
    Returns:
        ``(a, next_token)``: a in 0..K drafts accepted (a prefix of the block) and a
        0-d int64 tensor: the residual sample at position a if a < K, else the bonus
        token from q_{K+1}. Exactly one host sync (reading a; none when K = 0).
    """
    K = draft_tokens.shape[0]
    if target_probs.shape[0] != K + 1 or draft_probs.shape[0] != K:
        raise ValueError(
            f"need K+1 target rows and K draft rows for K={K} drafts, got "
            f"{tuple(target_probs.shape)} and {tuple(draft_probs.shape)}"
        )
    if K == 0:  # nothing to verify (autoregressive decoding): the next token comes from q_1
        return 0, sample(target_probs[0], generator)
    # Step 1: r_t ~ U[0, 1) and accept where r_t < min(1, q/p).
    r = torch.rand(K, generator=generator, device=target_probs.device, dtype=target_probs.dtype)
    accepted = (r < acceptance_probs(target_probs, draft_probs, draft_tokens)).tolist()  # K bools: the one sync
    # Step 2: the block keeps the drafts before the first rejection.
    a = accepted.index(False) if False in accepted else K
    # Step 3: replacement from the residual, or the bonus token when all K were kept.
    if a < K:
        next_probs = residual_distribution(target_probs[a], draft_probs[a])
    else:
        next_probs = target_probs[K]
    return a, sample(next_probs, generator)
