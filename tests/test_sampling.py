"""Processed distributions (temperature, top-k, top-p) and the sampler."""

import pytest
import torch

from pass_ref import SamplingConfig, logits_to_probs, sample
from pass_ref.sampling import first_argmax


def test_greedy_is_one_hot_argmax():
    """Temperature 0 gives a one-hot row on the argmax."""
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    probs = logits_to_probs(logits, SamplingConfig(0.0))
    assert torch.equal(probs, torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))


def test_temperature_scales_logits():
    """Temperature T is softmax(logits / T)."""
    logits = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    probs = logits_to_probs(logits, SamplingConfig(0.5))
    assert torch.allclose(probs, torch.softmax(logits / 0.5, -1))
    assert probs.dtype == torch.float64


def test_top_k_keeps_k_best():
    """Only the k most likely tokens keep mass, renormalised."""
    logits = torch.tensor([1.0, 4.0, 3.0, 2.0], dtype=torch.float64)
    probs = logits_to_probs(logits, SamplingConfig(1.0, top_k=2))
    expected = torch.softmax(torch.tensor([4.0, 3.0], dtype=torch.float64), -1)
    assert torch.allclose(probs, torch.tensor([0, expected[0], expected[1], 0], dtype=torch.float64))


def test_top_p_keeps_smallest_nucleus():
    """top_p keeps the best tokens until their mass reaches p (the first always stays)."""
    probs_in = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    probs = logits_to_probs(probs_in.log(), SamplingConfig(1.0, top_p=0.75))
    assert torch.allclose(probs, torch.tensor([0.625, 0.375, 0, 0], dtype=torch.float64))
    probs = logits_to_probs(probs_in.log(), SamplingConfig(1.0, top_p=0.1))
    assert torch.equal(probs, torch.tensor([1.0, 0, 0, 0], dtype=torch.float64))


@pytest.mark.parametrize("V", [7, 512, 1000, 151936])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_first_argmax_equals_argmax(V, dtype):
    """The block-wise argmax is torch's argmax: ties go to the first index, NaN counts as the largest."""
    g = torch.Generator().manual_seed(V)
    x = torch.randint(-3, 3, (2, 3, V), generator=g).to(dtype)  # many ties, across blocks and in the tail
    x[0, 1, V - 1] = 9.0  # the maximum alone in the last position (the tail when V is not a multiple of 256)
    x[1, 0, V // 2] = x[1, 0, V - 1] = 9.0  # a tie between a block and the tail: the first wins
    x[1, 2] = float("-inf")  # all equal: index 0
    x[0, 2, V // 3] = float("nan")
    x[1, 1, -1] = float("nan")
    assert torch.equal(first_argmax(x), x.argmax(dim=-1))
    assert torch.equal(first_argmax(x[0, 0]), x[0, 0].argmax())


def test_greedy_probs_of_low_precision_logits_are_float32_one_hot():
    """Greedy rows from bfloat16 logits: float32 one-hot on the same argmax as the float32 cast."""
    logits = torch.randn(5, 49152, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    probs = logits_to_probs(logits, SamplingConfig(0.0))
    assert probs.dtype == torch.float32
    assert torch.equal(probs.argmax(-1), logits.float().argmax(-1)) and torch.equal(probs.sum(-1), torch.ones(5))


def test_bfloat16_logits_become_float32_probs():
    """Low-precision logits are processed in float32."""
    probs = logits_to_probs(torch.randn(3, 10, dtype=torch.bfloat16), SamplingConfig(1.0))
    assert probs.dtype == torch.float32


def test_sample_one_hot_returns_argmax():
    """A one-hot row is always sampled as its hot index."""
    probs = torch.nn.functional.one_hot(torch.tensor([3, 0, 7]), 8).double()
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        assert sample(probs, g).tolist() == [3, 0, 7]


def test_sample_never_picks_zero_mass():
    """Tokens with probability 0 (even the last one) are never drawn."""
    probs = torch.tensor([0.0, 0.5, 0.0, 0.5, 0.0])
    g = torch.Generator().manual_seed(1)
    draws = sample(probs.expand(5000, -1), g)
    assert set(draws.tolist()) == {1, 3}


def test_sample_frequencies_match_probabilities():
    """Seeded chi-square: 40000 draws from a 6-token law fit it; a wrong law is rejected."""
    from scipy.stats import chisquare

    probs = torch.tensor([0.05, 0.1, 0.15, 0.2, 0.2, 0.3], dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    counts = torch.bincount(sample(probs.expand(40000, -1), g), minlength=6).double()
    assert chisquare(counts.numpy(), (probs * 40000).numpy()).pvalue > 1e-3
    wrong = torch.tensor([0.1, 0.1, 0.1, 0.2, 0.2, 0.3], dtype=torch.float64) * counts.sum()
    assert chisquare(counts.numpy(), wrong.numpy()).pvalue < 1e-6  # negative control


def test_sample_is_reproducible_with_seed():
    """Same generator seed, same draws."""
    probs = torch.softmax(torch.randn(100, 20), -1)
    a = sample(probs, torch.Generator().manual_seed(5))
    b = sample(probs, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(temperature=-0.1), ValueError),
        (dict(temperature=float("nan")), ValueError),
        (dict(temperature="hot"), TypeError),
        (dict(temperature=1.0, top_k=0), ValueError),
        (dict(temperature=1.0, top_k=2.5), TypeError),
        (dict(temperature=1.0, top_p=0.0), ValueError),
        (dict(temperature=1.0, top_p=1.5), ValueError),
    ],
)
def test_bad_sampling_settings_raise(kwargs, error):
    """Meaningless settings fail loudly."""
    with pytest.raises(error):
        SamplingConfig(**kwargs)
