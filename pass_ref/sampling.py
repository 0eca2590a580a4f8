"""Sampling: logits -> processed probabilities -> token.

Contract
--------
Every decoding method in ``pass_ref`` samples from a *processed* distribution:
temperature, then top-k, then top-p (the order Hugging Face ``generate`` uses).
The speculative accept/reject rule (``pass_ref.verify``) must see exactly these
processed probabilities on both sides of its ratio; using raw logits for the draft
side breaks exactness (``docs/paper.md``, Algorithm 1).

Temperature 0 means greedy decoding. It is represented as a one-hot distribution on
the argmax, so the same accept/reject rule covers greedy and sampled decoding: a
greedy draft is accepted iff it equals the target's argmax, and the "residual" of a
rejected greedy draft is the target's argmax.

Shapes: ``V`` vocabulary size, ``...`` any leading dimensions (usually ``T``
positions). Notebook: ``01_speculative_sampling`` explains the processing steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .checks import check_sampling_args


@dataclass(frozen=True)
class SamplingConfig:
    """How logits become a distribution to sample from."""

    temperature: float = 0.0  # 0 = greedy (argmax); > 0 divides the logits
    top_k: int | None = None  # keep the k most likely tokens; None = all
    top_p: float | None = None  # keep the smallest set with mass >= top_p; None = all

    def __post_init__(self) -> None:
        check_sampling_args(self.temperature, self.top_k, self.top_p)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def _top_k_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set every logit below the k-th largest to -inf (ties at the threshold are kept)."""
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def _top_p_mask(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the most likely tokens until their mass reaches p."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    sorted_probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass of strictly better tokens
    drop_sorted = mass_before >= p  # the first token always stays (mass_before = 0 < p)
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


_BLOCK = 256  # first_argmax's block: 256 values (0.5 to 2 KiB), reduced by one vectorised max


def first_argmax(x: torch.Tensor) -> torch.Tensor:
    """``x.argmax(-1)``, the same index (the first maximum; NaN counts as the largest), found block by block.

    ATen's CPU argmax is a scalar loop: over a 152k-token vocabulary it is about 7x slower than a vectorised
    max, and greedy decoding takes the argmax of every row it verifies or drafts from. Here a max over
    blocks of 256 finds the first block that holds the maximum, then an argmax inside that block (and one
    over the short tail when V is not a multiple of 256). Other devices use ``argmax`` itself.

    Args:
        x: (..., V) values.
    Returns:
        (...) int64 indices, equal to ``x.argmax(-1)``.
    """
    V, c = x.shape[-1], _BLOCK
    n = V // c  # whole blocks
    if x.device.type != "cpu" or n < 2:
        return x.argmax(dim=-1)
    flat = x.reshape(-1, V)  # (N, V)
    rows = torch.arange(flat.shape[0], device=x.device)  # (N,)
    blocks = flat[:, : n * c].reshape(-1, n, c)  # (N, n, c)
    block_max = blocks.amax(dim=-1)  # (N, n), NaN-propagating like argmax
    best = block_max.argmax(dim=-1)  # (N,) first block holding the maximum
    index = best * c + blocks[rows, best].argmax(dim=-1)  # (N,)
    if n * c < V:  # the tail wins only if it is strictly larger (or NaN where the blocks are not)
        tail = flat[:, n * c :]  # (N, V - n c)
        tail_index = tail.argmax(dim=-1)  # (N,)
        pair = torch.stack([block_max[rows, best], tail[rows, tail_index]], dim=-1)  # (N, 2)
        index = torch.where(pair.argmax(dim=-1) == 1, n * c + tail_index, index)
    return index.reshape(x.shape[:-1])


def logits_to_probs(logits: torch.Tensor, config: SamplingConfig) -> torch.Tensor:
    """Processed next-token distribution(s) from logits.

    Args:
        logits: (..., V) raw model outputs.
        config: temperature / top-k / top-p.
    Returns:
        (..., V) probabilities in float32 (float64 if the logits are float64); rows sum
        to 1. Greedy (temperature 0) returns one-hot rows on the argmax.
    """
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    if config.greedy:  # one-hot rows on the raw logits' argmax (a cast to float32 is exact: it changes no order)
        index = first_argmax(logits)[..., None]  # (..., 1)
        return torch.zeros(logits.shape, dtype=dtype, device=logits.device).scatter_(-1, index, 1.0)
    logits = logits.to(dtype)
    logits = logits / config.temperature
    if config.top_k is not None:
        logits = _top_k_mask(logits, config.top_k)
    if config.top_p is not None and config.top_p < 1.0:
        logits = _top_p_mask(logits, config.top_p)
    return torch.softmax(logits, dim=-1)


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per row of ``probs`` by inverting the cumulative distribution.

    Args:
        probs: (..., V) processed probabilities (rows need not be exactly normalised).
        generator: explicit source of randomness (None: torch's default generator).
    Returns:
        (...) int64 token ids. A token with zero probability is never drawn, so a one-hot
        row (greedy) always yields its argmax. One uniform per row is consumed whatever
        the distribution, which keeps one code path for greedy and sampled decoding.
        Inverse-CDF sampling is as exact as ``torch.multinomial`` (both accumulate in the
        probabilities' dtype) and lets the caller see exactly which uniform chose the token.
    """
    flat = probs.reshape(-1, probs.shape[-1])  # (N, V)
    cdf = flat.cumsum(dim=-1)  # (N, V), non-decreasing
    total = cdf[:, -1:].contiguous()  # (N, 1)
    u = torch.rand(flat.shape[0], 1, generator=generator, device=flat.device, dtype=cdf.dtype) * total
    index = torch.searchsorted(cdf, u, right=True)  # first i with cdf[i] > u: p_i > 0
    # If rounding made u reach the total, fall back to the last token with positive mass.
    last_positive = torch.searchsorted(cdf, total, right=False)  # (N, 1)
    return torch.minimum(index, last_positive).reshape(probs.shape[:-1])
