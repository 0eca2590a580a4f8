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


def test_humaneval_acceptance_tool_measures_every_set_on_every_prompt_set(tmp_path, monkeypatch):
    """tools/humaneval_acceptance.py on the default model: one row per set and prompt set, as the
    decoding counts them, rendered into RESULTS; an unknown set is refused."""
    import importlib.util
    import json
    from pathlib import Path

    from pass_ref.experiments.results_doc import transfer_section

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("humaneval_acceptance", root / "tools" / "humaneval_acceptance.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    saved = tmp_path / "mine"
    pass_ref.load_lookahead("code", 4, recipe="extended").save_pretrained(saved)
    out = tmp_path / "results" / "ablation" / "humaneval_acceptance.json"
    assert tool.main(["--model", "default", "--sets", f"paper,{saved}", "--prompts", "5",
                      "--max-new-tokens", "3", "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    assert [(r["name"].split(" (")[0], r["prompts"]) for r in d["rows"]] == [
        (name, prompts) for prompts in ("HumanEval 1-4 (the timed ones)", "HumanEval 5-5", "held-out code")
        for name in ("shipped paper", str(saved))]
    for r in d["rows"]:
        assert r["new_tokens"] == 3 * (10 if r["prompts"] == "held-out code" else 4 if "1-4" in r["prompts"] else 1)
        assert len(r["acceptance"]) == 4 and r["tokens_per_call"] == pytest.approx(r["new_tokens"] / r["model_calls"])
    section = "\n".join(transfer_section(tmp_path / "results"))
    assert "### Does held-out acceptance carry over to HumanEval?" in section and section.count("| HumanEval 5-5 |") == 2
    with pytest.raises(SystemExit, match="neither a recipe"):
        tool.main(["--model", "default", "--sets", str(tmp_path / "missing"), "--out", str(out)])
