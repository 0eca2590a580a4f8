"""The latency model: t(n) measurement contract and the speed-up formulas."""

import itertools

import pytest

from pass_ref.course.theory import pass_speedup
from pass_ref.experiments.latency import (
    LatencyCurve,
    accepted_count_law,
    best_groups,
    best_num_lookahead,
    break_even,
    measure_forward_latency,
    predicted_fused_speedup,
    predicted_pass_speedup,
    predicted_prompt_lookup_speedup,
    predicted_speculative_speedup,
    predicted_speedup_from_calls,
)


def curve(ratios):
    return LatencyCurve(
        new_tokens=list(range(1, len(ratios) + 1)),
        seconds=[0.01 * r for r in ratios],
        context=8,
        repeats=1,
        device="cpu",
        dtype="float64",
        model="x",
    )


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
    # Independent acceptance alpha at each of L = 4 positions: alpha_i = alpha^i.
    alpha = 0.5
    acc = [alpha**i for i in range(1, 5)]
    assert predicted_pass_speedup(c, acc) == pytest.approx(pass_speedup(alpha, 4, 1.13))
    assert predicted_pass_speedup(c, [0, 0, 0, 0]) == pytest.approx(1 / 1.13)  # nothing accepted: 2 tokens per 2 calls
    assert predicted_speculative_speedup(c, [1.0, 1.0], draft_call_s=0.0) == pytest.approx(3 / 1.1)
    assert predicted_prompt_lookup_speedup(c, 1.5, 4) == pytest.approx(1.5 / 1.13)


def test_interpolation_and_call_accounting():
    """t at unmeasured n interpolates; a run's prediction is tokens x t(1) / sum of t(call sizes)."""
    c = LatencyCurve(new_tokens=[1, 3, 5], seconds=[1.0, 2.0, 4.0], context=8, repeats=1, device="cpu", dtype="f", model="x")
    assert c.at(2) == pytest.approx(1.5) and c.at(4) == pytest.approx(3.0) and c.at(7) == pytest.approx(6.0)
    assert predicted_speedup_from_calls(c, [100, 1, 1, 1], 4) == pytest.approx(1.0)  # autoregressive: prefill counts as 1
    assert predicted_speedup_from_calls(c, [100, 5, 3], 6) == pytest.approx(6 / (1 + 4 + 2))
    with pytest.raises(ValueError):
        predicted_speedup_from_calls(c, [], 3)


def test_interpolated_curve_keeps_the_measured_points_and_draws_lines_between():
    """A padded (compiled) curve answers t(n) with its padded size; ``interpolated`` gives the line instead."""
    c = LatencyCurve(new_tokens=[1, 5, 9], seconds=[1.0, 3.0, 3.4], context=8, repeats=3, device="cpu", dtype="f", model="x",
                     samples=[[1.0], [3.0], [3.4]], padded=True)
    assert c.at(2) == 3.0  # padded to 5
    line = c.interpolated(range(1, 6))
    assert line.new_tokens == [1, 2, 3, 4, 5, 9] and not line.padded and line.samples == []
    assert line.seconds == pytest.approx([1.0, 1.5, 2.0, 2.5, 3.0, 3.4]) and line.context == 8 and line.repeats == 3
    assert c.padded and c.new_tokens == [1, 5, 9]  # the original is left alone
    with pytest.raises(ValueError):
        c.interpolated([0, 2])


def test_fused_prediction_matches_a_simulation():
    """The two-state closed form equals a Monte Carlo run of the one-call loop's call sizes."""
    import random

    c = curve([1.0 + 0.02 * n for n in range(40)])
    acc = [0.4, 0.15, 0.05, 0.01]
    law = accepted_count_law(acc)
    assert sum(law) == pytest.approx(1.0) and law[0] == pytest.approx(0.6)
    for groups in (None, (0, 1), (0,), (1, 2), ()):
        A = list(range(5)) if groups is None else list(groups)
        rng = random.Random(0)
        tokens, seconds, drafts = 0, 0.0, False
        for _ in range(200_000):
            if drafts:
                n = rng.choices(range(5), law)[0]
                tokens, seconds, drafts = tokens + 1 + n, seconds + c.at(1 + 4 + len(A) * 4), n in A
            else:  # the drafting call [z] + G_0
                tokens, seconds, drafts = tokens + 1, seconds + c.at(1 + 4), True
        assert predicted_fused_speedup(c, acc, groups) == pytest.approx(tokens * c.t(1) / seconds, rel=0.01), groups
    assert predicted_fused_speedup(c, acc, ()) == pytest.approx(predicted_pass_speedup(c, acc))  # no group: two calls


def test_best_num_lookahead():
    """Flat t(n): every look-ahead token is free, so all L; t(n) growing per input: the rarely accepted last
    positions cost more than they bring, so fewer; the choice is the brute-force best; margin and bad input."""
    acc = [0.6, 0.3, 0.06, 0.01]
    flat = best_num_lookahead(curve([1.0] * 9), acc)
    assert flat.num_lookahead == 4 and flat.predicted == flat.every == pytest.approx(predicted_pass_speedup(curve([1.0] * 9), acc))
    steep = curve([1.0 + 0.04 * (n - 1) for n in range(1, 10)])
    choice = best_num_lookahead(steep, acc)
    assert choice.num_lookahead == 2 and choice.predicted > choice.every * 1.02
    assert choice.predicted == max(predicted_pass_speedup(steep, acc[:k]) for k in range(1, 5))
    assert set(choice.by_k) == {1, 2, 3, 4}
    assert best_num_lookahead(steep, acc, margin=0.5).num_lookahead == 4  # a gain under the margin keeps all L
    sparse = LatencyCurve([1, 3, 5], [0.01, 0.0104, 0.0116], 8, 1, "cpu", "float32", "toy")  # only K = 2 and 4 measured
    assert set(best_num_lookahead(sparse, acc).by_k) == {2, 4}
    with pytest.raises(ValueError, match=r"L \+ 1"):
        best_num_lookahead(curve([1.0] * 4), acc)
    with pytest.raises(ValueError, match="at least one"):
        best_num_lookahead(steep, [])


def test_best_groups():
    """Flat t(n): more groups are free, so the chosen set keeps drafting after likely counts; steep t(n): the two
    calls win and the choice is the empty set; never predicted below the two calls; bad input refused."""
    acc = [0.5, 0.2, 0.05, 0.0]
    flat = best_groups(curve([1.0] * 40), acc)
    assert flat.groups == (0, 1, 2, 3) and flat.predicted > flat.two_call  # P(a = 4) = 0: a tie, fewer groups win
    assert flat.every == pytest.approx(flat.predicted)
    steep = best_groups(curve([float(n) for n in range(1, 40)]), acc)
    assert steep.groups == () and steep.predicted == pytest.approx(steep.two_call)
    capped = best_groups(curve([1.0] * 13), acc)  # a call of 1 + 4 + 3 * 4 = 17 inputs was not measured
    assert len(capped.groups) <= 2 and capped.every is None
    subsets = [A for k in range(6) for A in itertools.combinations(range(5), k)]
    for slope in (0.0, 0.01, 0.03, 0.1, 0.3):
        c = curve([1.0 + slope * (n - 1) for n in range(1, 40)])
        choice = best_groups(c, acc, margin=0.0)
        assert choice.predicted >= choice.two_call
        brute = max(predicted_fused_speedup(c, acc, A) for A in subsets if 1 + 4 + len(A) * 4 <= 39)
        assert choice.predicted == pytest.approx(brute)
        assert predicted_fused_speedup(c, acc, choice.groups) == choice.predicted
    # The default margin: a predicted gain under 5 % over the two calls keeps the two calls.
    c = curve([1.0 + 0.03 * (n - 1) for n in range(1, 40)])
    gain = best_groups(c, acc, margin=0.0)
    assert gain.groups and 1.0 < gain.predicted / gain.two_call < 1.05
    assert best_groups(c, acc).groups == () and best_groups(c, acc).predicted == gain.two_call
    with pytest.raises(ValueError, match="probabilities"):
        best_groups(flat_curve := curve([1.0] * 40), [1.5, 0.2])
    with pytest.raises(ValueError, match=r"L \+ 1"):
        best_groups(curve([1.0] * 3), acc)
    with pytest.raises(ValueError, match="at least one"):
        best_groups(flat_curve, [])


def test_break_even():
    """Flat t(n): any accepted draft pays; t(n) = n: no method can pay with fewer than n - 1 accepted drafts."""
    flat = curve([1.0] * 40)
    assert break_even(flat, 4) == {"two_call": 0.0, "fused": 0.0, "prompt_lookup": 0.0}
    linear = curve(list(range(1, 41)))
    b = break_even(linear, 4, groups=2, candidates=8)
    assert b == {"two_call": pytest.approx(8.0), "fused": pytest.approx(12.0), "prompt_lookup": pytest.approx(8.0)}
