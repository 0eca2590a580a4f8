"""The acceptance evaluation: its counts agree with the decoding statistics they come from."""

import math

import pytest
import torch

import pass_ref
from pass_ref.experiments.evaluation import compare_lookaheads, format_table, measure_acceptance, plot_training_curves


def test_measure_acceptance_aggregates_stats(tiny_model):
    la = pass_ref.LookaheadEmbeddings.from_random(tiny_model, 3, seed=0)
    prompts = [torch.tensor([1, 2, 3]), torch.tensor([4, 5])]
    result = measure_acceptance(tiny_model, la, prompts, max_new_tokens=12, temperature=1.0, seed=5)
    outs = [pass_ref.pass_generate(tiny_model, la, p, max_new_tokens=12, temperature=1.0, seed=5 + j) for j, p in enumerate(prompts)]
    calls = sum(o.stats.model_calls for o in outs)
    assert result.new_tokens == 24 and result.model_calls == calls
    assert math.isclose(result.tokens_per_call, 24 / calls)
    for i in range(3):
        drafted = sum(o.stats.drafted[i] for o in outs)
        accepted = sum(o.stats.accepted[i] for o in outs)
        assert math.isclose(result.acceptance[i], accepted / drafted)
    # a block that accepted x̃_{i+1} also accepted x̃_i: the *counts* cannot rise with i (the
    # rates can, when blocks cut short near max_new_tokens leave later positions undrafted)
    for o in outs:
        assert all(a >= b for a, b in zip(o.stats.accepted, o.stats.accepted[1:]))


def test_compare_and_table(tiny_model):
    candidates = {
        "unk": pass_ref.LookaheadEmbeddings.from_token(tiny_model, 2),
        "random": pass_ref.LookaheadEmbeddings.from_random(tiny_model, 2),
    }
    rows = compare_lookaheads(
        tiny_model, candidates, {"p": [torch.tensor([1, 2])]}, temperatures=(0.0, 0.8), max_new_tokens=8, progress=False
    )
    assert [(r.name, r.temperature, r.top_k) for r in rows] == [
        ("unk", 0.0, None),
        ("random", 0.0, None),
        ("unk", 0.8, 10),
        ("random", 0.8, 10),
    ]
    table = format_table(rows)
    assert table.count("\n") == 5 and "LA_2" in table and "0.8, top-10" in table


def test_measure_acceptance_needs_prompts(tiny_model):
    with pytest.raises(ValueError):
        measure_acceptance(tiny_model, pass_ref.LookaheadEmbeddings.from_token(tiny_model, 2), [])


def test_training_curve_figure():
    fig = plot_training_curves({"a": {"loss": [3.0, 2.0, 1.5, 1.2], "heldout_loss": 1.4}}, smooth=2)
    ax = fig.axes[0]
    assert len(ax.lines) == 1 and ax.lines[0].get_ydata().tolist() == [2.5, 1.75, 1.35]
