"""Checking distributional exactness by enumeration (notebook ``03_correctness``).

Speculative sampling promises that the generated tokens follow the target's own law
(Chen et al. 2023, Theorem 1). On a model with a small vocabulary V, the exact
law of the first m generated tokens can be computed by enumerating all V^m sequences;
samples from any decoding method can then be compared with it by a chi-square test.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..sampling import SamplingConfig, logits_to_probs


def exact_sequence_law(model, prompt: list[int], length: int, sampling: SamplingConfig) -> torch.Tensor:
    """P(x_1..x_m | prompt) under plain sampling from the processed target q.

    Returns:
        (V,) * m tensor of probabilities (float64); entry [a, b, ...] is P(x_1=a, x_2=b, ...).
    """
    V = model.get_input_embeddings().weight.shape[0]
    law = torch.ones((), dtype=torch.float64)
    with torch.inference_mode():
        for t in range(length):
            prefixes = list(itertools.product(range(V), repeat=t))  # all V^t continuations so far
            ids = torch.tensor([prompt + list(p) for p in prefixes])  # (V^t, T + t)
            logits = model(input_ids=ids).logits[:, -1]  # (V^t, V)
            q = logits_to_probs(logits, sampling).double().reshape((V,) * t + (V,))
            law = law.unsqueeze(-1) * q  # (V,) * (t + 1)
    return law


def empirical_counts(samples: list[list[int]], vocab_size: int, length: int) -> np.ndarray:
    """Counts of each first-``length``-token sequence: an array of shape (V,) * m."""
    counts = np.zeros((vocab_size,) * length, dtype=np.int64)
    for s in samples:
        counts[tuple(s[:length])] += 1
    return counts


@dataclass
class ChiSquareResult:
    statistic: float
    dof: int
    pvalue: float
    total_variation: float  # 0.5 * sum |empirical - exact|


def chi_square_test(counts: np.ndarray, law: np.ndarray, min_expected: float = 5.0) -> ChiSquareResult:
    """Pearson chi-square of observed counts against an exact law.

    Cells whose expected count is below ``min_expected`` are pooled into one cell so the
    chi-square approximation holds.
    """
    from scipy.stats import chi2

    counts = np.asarray(counts, dtype=np.float64).ravel()
    law = np.asarray(law, dtype=np.float64).ravel()
    n = counts.sum()
    expected = law * n
    big = expected >= min_expected
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    if np.any((obs > 0) & ~keep):
        return ChiSquareResult(float("inf"), int(keep.sum()) - 1, 0.0, 0.5 * np.abs(counts / n - law).sum())
    stat = float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum())
    dof = int(keep.sum()) - 1
    return ChiSquareResult(stat, dof, float(chi2.sf(stat, dof)), float(0.5 * np.abs(counts / n - law).sum()))


def chi_square_power(exact: np.ndarray, wrong: np.ndarray, samples: int, significance: float = 1e-6) -> float:
    """Probability that a chi-square test at ``significance`` rejects ``exact`` when the samples follow ``wrong``.

    Large-sample approximation: the statistic follows a noncentral chi-square with M - 1
    degrees of freedom (M cells) and noncentrality ``samples * sum((w - e)^2 / e)``.
    Cells where the exact law is 0 are left out (any sample there is rejected outright).
    """
    from scipy.stats import chi2, ncx2

    e, w = np.asarray(exact, dtype=np.float64).ravel(), np.asarray(wrong, dtype=np.float64).ravel()
    keep = e > 0
    dof = int(keep.sum()) - 1
    distance = float(((w[keep] - e[keep]) ** 2 / e[keep]).sum())
    if dof < 1 or distance == 0:
        return float(significance)
    return float(ncx2.sf(chi2.isf(significance, dof), dof, samples * distance))


def samples_needed(exact: np.ndarray, wrong: np.ndarray, significance: float = 1e-6, power: float = 0.9) -> int:
    """The fewest samples for which ``chi_square_power`` reaches ``power`` (bisection; the power grows with samples)."""
    if not 0 < significance < power < 1:
        raise ValueError("need 0 < significance < power < 1")
    if np.allclose(np.asarray(exact, dtype=np.float64), np.asarray(wrong, dtype=np.float64), rtol=0, atol=1e-15):
        raise ValueError("the two laws are equal: no number of samples tells them apart")
    high = 1
    while chi_square_power(exact, wrong, high, significance) < power:
        high *= 2
    low = high // 2  # power(low) < power <= power(high), or low = 0
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if chi_square_power(exact, wrong, mid, significance) >= power else (mid, high)
    return high


def sample_sequences(generate: Callable[[int], torch.Tensor], num_samples: int, *, progress: bool = False) -> list[list[int]]:
    """Call ``generate(seed)`` for seeds 0..num_samples-1 and collect the new tokens."""
    seeds = range(num_samples)
    if progress:
        from tqdm.auto import tqdm

        seeds = tqdm(seeds, desc="sampling", leave=False)
    return [generate(seed).tolist() for seed in seeds]
