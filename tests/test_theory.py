"""The speed-up formulas agree with simulation and with their limiting cases."""

import math

import pytest
import torch

from pass_ref.course import theory


@pytest.mark.parametrize("alpha, L", [(0.0, 4), (0.3, 2), (0.7, 4), (1.0, 8), (0.5, 0)])
def test_formula_matches_simulation(alpha, L):
    g = torch.Generator().manual_seed(0)
    simulated = theory.simulate_pass_tokens_per_iteration(alpha, L, 200_000, g)
    assert abs(simulated - theory.pass_tokens_per_iteration(alpha, L)) < 0.02


def test_limits():
    assert theory.pass_tokens_per_call(0.0, 4) == 1.0  # nothing accepted: as many tokens as calls
    assert theory.pass_tokens_per_call(1.0, 4) == 3.0  # the (L + 2) / 2 ceiling
    assert math.isclose(theory.expected_accepted(0.5, 3), 0.875)
    assert theory.pass_speedup(1.0, 4, 1.0) == 3.0
    assert math.isclose(theory.speculative_speedup(0.0, 4, 1.0, 0.0), 1.0)
    assert theory.tokens_per_iteration_from_acceptance([0.5, 0.25]) == 2.75
    assert theory.tokens_per_iteration_from_acceptance([0.5], exact_token=False) == 1.5


def test_measured_acceptance_form_equals_iid_form():
    alpha, L = 0.6, 5
    rates = [alpha**i for i in range(1, L + 1)]  # P(a >= i) under independence
    assert math.isclose(theory.tokens_per_iteration_from_acceptance(rates), theory.pass_tokens_per_iteration(alpha, L))


def test_decoding_is_memory_bound_at_one_token():
    one = theory.decoding_cost(7_000_000_000, 2, 1)
    many = theory.decoding_cost(7_000_000_000, 2, 8)
    assert one["flops_per_byte"] == 1.0 and many["flops_per_byte"] == 8.0 and one["bytes"] == many["bytes"]


@pytest.mark.parametrize(
    "call", [lambda: theory.expected_accepted(1.5, 2), lambda: theory.expected_accepted(0.5, -1), lambda: theory.pass_speedup(0.5, 2, 0)]
)
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()
