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

Speed: on a CPU, a scan over the whole vocabulary after every call is a visible share of
a decoding step (``torch.argmax`` and ``torch.cumsum`` do not vectorise along a row:
about 0.1-0.3 ms per 150k-entry row on a laptop core). For vocabularies that are a
multiple of ``BLOCK`` (most models pad theirs so), ``argmax_tokens`` and ``sample`` scan
in two stages: a vectorised per-block reduction, then one block. The results are those of
the flat scans: the same argmax, and the same inverse-CDF draw up to the rounding of the
partial sums (``tests/test_sampling.py`` checks both).

Shapes: ``V`` vocabulary size, ``N`` rows, ``...`` any leading dimensions (usually ``T``
positions). Notebook: ``01_speculative_sampling`` explains the processing steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .checks import check_sampling_args

BLOCK = 128  # vocabulary entries per block of the two-stage scans


def _blocked(rows: torch.Tensor) -> bool:
    """Whether the (N, V) rows take the two-stage scans: on CPU, V a multiple of BLOCK and at least 32 blocks."""
    V = rows.shape[-1]
    return rows.device.type == "cpu" and V % BLOCK == 0 and V >= 32 * BLOCK


def argmax_tokens(logits: torch.Tensor) -> torch.Tensor:
    """``logits.argmax(-1)``: the first maximum of each row (a NaN counts as the maximum, as in torch).

    Two stages where ``_blocked``: the first block holding a row's maximum (a vectorised
    ``amax`` per block), then the first maximum inside it. (..., V) in, (...) int64 out.
    """
    V = logits.shape[-1]
    flat = logits.reshape(-1, V)  # (N, V)
    if not _blocked(flat):
        return logits.argmax(dim=-1)
    blocks = flat.view(flat.shape[0], V // BLOCK, BLOCK)  # (N, V / BLOCK, BLOCK)
    best = blocks.amax(dim=-1).argmax(dim=-1)  # (N,) the first block holding the maximum
    inner = blocks[torch.arange(flat.shape[0], device=flat.device), best].argmax(dim=-1)  # (N,)
    return (best * BLOCK + inner).reshape(logits.shape[:-1])


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
    if config.greedy:  # one-hot rows written in place (a one_hot of int64 ids, then a cast, costs 3 passes more)
        index = argmax_tokens(logits)[..., None]  # (..., 1); in the logits' dtype: the cast to float32 keeps the order
        return torch.zeros(logits.shape, dtype=dtype, device=logits.device).scatter_(-1, index, 1.0)
    logits = logits.to(dtype) / config.temperature
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
        Large vocabularies on CPU scan in two stages (module docstring): the block whose
        cumulative mass passes the uniform, then the token inside that block.
    """
    flat = probs.reshape(-1, probs.shape[-1])  # (N, V)
    u = torch.rand(flat.shape[0], 1, generator=generator, device=flat.device, dtype=flat.dtype)  # (N, 1)
    if not _blocked(flat):
        cdf = flat.cumsum(dim=-1)  # (N, V), non-decreasing
        return _first_above(cdf, u * cdf[:, -1:]).reshape(probs.shape[:-1])
    N, V = flat.shape
    blocks = flat.view(N, V // BLOCK, BLOCK)  # (N, V / BLOCK, BLOCK)
    block_cdf = blocks.sum(dim=-1).cumsum(dim=-1)  # (N, V / BLOCK)
    point = u * block_cdf[:, -1:]  # (N, 1)
    j = _first_above(block_cdf, point)  # (N, 1): the block the point falls in (its mass is positive)
    before = torch.where(j > 0, block_cdf.gather(1, (j - 1).clamp_min(0)), 0.0)  # (N, 1): the blocks' mass before it
    inside = before + blocks[torch.arange(N, device=flat.device), j[:, 0]].cumsum(dim=-1)  # (N, BLOCK)
    return (j * BLOCK + _first_above(inside, point)).reshape(probs.shape[:-1])


def _first_above(cdf: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """(N, 1) index of the first entry of each non-decreasing (N, W) ``cdf`` row above ``point`` (N, 1).

    That entry has positive mass. If rounding lets the point reach the row's last value,
    the row's last entry of positive mass is returned instead, never an entry of zero mass.
    """
    index = torch.searchsorted(cdf, point, right=True)  # first i with cdf[i] > point
    return torch.minimum(index, torch.searchsorted(cdf, cdf[:, -1:].contiguous(), right=False))  # (N, 1)
