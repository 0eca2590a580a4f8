"""The latency model: t(n) measurement contract and the speed-up formulas."""

import pytest

from pass_ref.experiments.latency import (
    LatencyCurve,
    measure_forward_latency,
    predicted_pass_speedup,
    predicted_prompt_lookup_speedup,
    predicted_speculative_speedup,
)
from pass_ref.course.theory import pass_speedup


def curve(ratios):
    return LatencyCurve(new_tokens=list(range(1, len(ratios) + 1)), seconds=[0.01 * r for r in ratios], context=8, repeats=1, device="cpu", dtype="float64", model="x")


def test_measure_on_a_tiny_model(tiny_model):
    c = measure_forward_latency(tiny_model, [2, 5], context=10, repeats=3, warmup=1)
    assert c.new_tokens == [1, 2, 5]  # t(1) is always measured
    assert all(s > 0 for s in c.seconds) and all(len(x) == 3 for x in c.samples)
    assert c.ratio(1) == 1.0 and c.context == 10
    with pytest.raises(KeyError, match="not measured"):
        c.t(3)
    assert LatencyCurve.from_dict(c.to_dict()) == c


def test_measure_rejects_bad_input(tiny_model):
    with pytest.raises(ValueError, match="positive"):
        measure_forward_latency(tiny_model, [0, 1], context=4)
    with pytest.raises(ValueError, match="exceed"):
        measure_forward_latency(tiny_model, [1, 8], context=250)


def test_formulas_agree_with_theory():
    c = curve([1.0, 1.05, 1.1, 1.12, 1.13])
    # Independent acceptance alpha at each of L = 4 positions: a_i = alpha^i.
    alpha = 0.5
    acc = [alpha**i for i in range(1, 5)]
    assert predicted_pass_speedup(c, acc) == pytest.approx(pass_speedup(alpha, 4, 1.13))
    assert predicted_pass_speedup(c, [0, 0, 0, 0]) == pytest.approx(1 / 1.13)  # nothing accepted: 2 tokens per 2 calls
    assert predicted_speculative_speedup(c, [1.0, 1.0], draft_call_s=0.0) == pytest.approx(3 / 1.1)
    assert predicted_prompt_lookup_speedup(c, 1.5, 4) == pytest.approx(1.5 / 1.13)
