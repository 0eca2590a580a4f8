"""The benchmark harness end to end on a tiny float64 model: shape of the table, greedy equality
of every method (ours, HF generate, prompt lookup, PaSS, draft model), interruption, errors.
Timings are recorded but never asserted."""

import json
import math

import pytest
import torch

import pass_ref
from pass_ref import LookaheadEmbeddings
from pass_ref.experiments.bench import (
    BenchRunner,
    RunSpec,
    all_methods,
    bench_options,
    format_markdown,
    load_records,
    plan_runs,
    run_benchmark,
    summarize,
    write_results,
)
from pass_ref.experiments.bench_figures import save_figures
from pass_ref.experiments.latency import measure_forward_latency

PROMPTS = [[1, 2, 3, 1, 2, 3], [5, 6, 7, 8, 9], [7, 7, 1, 2, 30, 11]]


def random_lookahead(model, L, seed):
    la = LookaheadEmbeddings.from_token(model, L)
    with torch.no_grad():
        la.weight.copy_(0.2 * torch.randn(la.weight.shape, generator=torch.Generator().manual_seed(seed), dtype=la.weight.dtype))
    return la


@pytest.fixture
def runner(tiny_model, monkeypatch):
    monkeypatch.setattr(tiny_model.generation_config, "pad_token_id", 0)
    # A default EOS that greedy decoding does produce: every method must still run to max_new_tokens
    # (HF generate falls back to this default unless told otherwise).
    eos = pass_ref.autoregressive_generate(tiny_model, PROMPTS[0], max_new_tokens=3).new_tokens[1].item()
    monkeypatch.setattr(tiny_model.generation_config, "eos_token_id", eos)
    monkeypatch.setattr(tiny_model.config, "eos_token_id", eos)
    return BenchRunner(
        tiny_model,
        max_new_tokens=20,
        top_k=10,
        trained={L: random_lookahead(tiny_model, L, L) for L in (2, 4)},
        options=bench_options(num_draft_tokens=3, prompt_lookup_tokens=3, groups=(0, 1),
                              draft_model=pass_ref.truncated_draft_model(tiny_model, 1)),
    )


def test_auto_groups_come_from_the_sets_acceptance_and_the_curve(tiny_model):
    """groups="auto": chosen per set by best_groups; records keep them; refused without a curve or an acceptance."""
    from pass_ref.experiments.latency import LatencyCurve, best_groups

    def flat_or_steep(slope):
        ns = list(range(1, 30))
        return LatencyCurve(ns, [0.01 * (1 + slope * (n - 1)) for n in ns], 8, 1, "cpu", "float64", "tiny")

    la = random_lookahead(tiny_model, 4, 0)
    la.metadata["heldout_greedy"] = {"acceptance": [0.6, 0.3, 0.1, 0.02]}
    spec = RunSpec("pass-fused", 4, 0.0)
    for slope, want in ((0.0, (0, 1, 2, 3, 4)), (1.0, ())):
        runner = BenchRunner(tiny_model, max_new_tokens=12, trained={4: la}, options=bench_options(), latency=flat_or_steep(slope))
        record = runner.run(spec, PROMPTS[0], 0)
        assert tuple(record["groups"]) == want == best_groups(runner.latency, la.measured_acceptance()).groups
        assert record["tokens"] == pass_ref.autoregressive_generate(tiny_model, PROMPTS[0], max_new_tokens=12).new_tokens.tolist()
    with pytest.raises(ValueError, match="t\\(n\\)"):
        BenchRunner(tiny_model, max_new_tokens=4, trained={4: la}, options=bench_options()).run(spec, PROMPTS[0], 0)
    la.metadata.pop("heldout_greedy")
    with pytest.raises(ValueError, match="measured acceptance"):
        BenchRunner(tiny_model, max_new_tokens=4, trained={4: la}, options=bench_options(), latency=flat_or_steep(0.0)).run(
            spec, PROMPTS[0], 0)


def test_auto_groups_are_kept_only_when_timed_faster_on_the_calibration_prompt(tiny_model, monkeypatch):
    """With a calibration prompt, a predicted group set is timed against the two calls (once per method and L)
    and kept only if measured GROUP_MARGIN faster; a prediction of the two calls is never timed."""
    import pass_ref.experiments.bench as bench
    from pass_ref.experiments.latency import GROUP_MARGIN, LatencyCurve

    ns = list(range(1, 30))
    flat = LatencyCurve(ns, [0.01] * len(ns), 8, 1, "cpu", "float64", "tiny")
    steep = LatencyCurve(ns, [0.01 * n for n in ns], 8, 1, "cpu", "float64", "tiny")
    la = random_lookahead(tiny_model, 4, 0)
    la.metadata["heldout_greedy"] = {"acceptance": [0.6, 0.3, 0.1, 0.02]}
    spec = RunSpec("pass-fused", 4, 0.0)
    calls = []
    for gain, curve, want in ((1.5, flat, (0, 1, 2, 3, 4)), (1 + GROUP_MARGIN / 2, flat, ()), (9.0, steep, ())):
        def fake(model, method, lookahead, options, prompt, max_new_tokens, gain=gain):
            assert max_new_tokens == 6  # the calibration never runs longer than the benchmark's runs
            calls.append((method, tuple(options["groups"]), list(prompt)))
            return gain
        monkeypatch.setattr(bench, "confirm_groups", fake)
        calls.clear()
        runner = BenchRunner(tiny_model, max_new_tokens=6, trained={4: la}, options=bench_options(), latency=curve,
                             calibration=PROMPTS[2])
        records = [runner.run(spec, p, i) for i, p in enumerate(PROMPTS[:2])]
        assert [tuple(r["groups"]) for r in records] == [want, want]
        note = runner.group_choices[("pass-fused", 4)]
        if curve is flat:  # predicted: every group; timed once, on the calibration prompt
            assert calls == [("pass-fused", (0, 1, 2, 3, 4), PROMPTS[2])] and note["measured_gain"] == gain
        else:  # predicted: the two calls, nothing to time
            assert calls == [] and note["predicted"] == [] and "measured_gain" not in note


def test_auto_num_lookahead_reads_the_first_k_and_keeps_a_shorter_draft_only_if_not_timed_slower(tiny_model, monkeypatch):
    """Two-call PaSS with num_lookahead="auto": on a t(n) that grows per input the prediction picks K < L, which is
    timed against all L on the calibration prompt (once) and kept unless slower; the runs then make calls of at most
    K + 1 inputs and record K. A flat t(n) predicts all L and times nothing; an int reads that many."""
    import pass_ref.experiments.bench as bench
    from pass_ref.experiments.latency import LatencyCurve

    ns = list(range(1, 30))
    flat = LatencyCurve(ns, [0.01] * len(ns), 8, 1, "cpu", "float64", "tiny")
    steep = LatencyCurve(ns, [0.01 * (1 + 0.04 * (n - 1)) for n in ns], 8, 1, "cpu", "float64", "tiny")
    la = random_lookahead(tiny_model, 4, 0)
    la.metadata["heldout_greedy"] = {"acceptance": [0.6, 0.3, 0.06, 0.01]}
    spec = RunSpec("pass", 4, 0.0)
    calls = []
    for gain, curve, want in ((1.1, steep, 2), (0.97, steep, 4), (9.0, flat, 4)):
        def fake(model, method, lookahead, base, candidate, prompt, max_new_tokens, gain=gain):
            calls.append((method, base["num_lookahead"], candidate["num_lookahead"], list(prompt)))
            return gain
        monkeypatch.setattr(bench, "confirm_faster", fake)
        calls.clear()
        runner = BenchRunner(tiny_model, max_new_tokens=6, trained={4: la}, latency=curve, calibration=PROMPTS[2],
                             options=bench_options(extra={"pass": {"num_lookahead": "auto"}}))
        records = [runner.run(spec, p, i) for i, p in enumerate(PROMPTS[:2])]
        assert [r["num_lookahead"] for r in records] == [want, want] and all(r["L"] == 4 for r in records)
        assert all(max(r["call_sizes"][1:]) <= want + 1 for r in records)
        note = runner.lookahead_choices[("pass", 4)]
        assert calls == ([] if curve is flat else [("pass", 4, 2, PROMPTS[2])]) and note["num_lookahead"] == want
    fixed = BenchRunner(tiny_model, max_new_tokens=6, trained={4: la}, options=bench_options(extra={"pass": {"num_lookahead": 3}}))
    record = fixed.run(spec, PROMPTS[0], 0)
    assert record["num_lookahead"] == 3 and max(record["call_sizes"][1:]) == 4
    plain = BenchRunner(tiny_model, max_new_tokens=6, trained={4: la}).run(spec, PROMPTS[0], 0)
    assert "num_lookahead" not in plain and record["tokens"] == plain["tokens"]  # greedy: the same tokens either way
    fused = BenchRunner(tiny_model, max_new_tokens=6, trained={4: la}, latency=steep,
                        options=bench_options(extra={"pass-fused": {"num_lookahead": "auto"}}))
    with pytest.raises(ValueError, match="two-call"):
        fused.run(RunSpec("pass-fused", 4, 0.0), PROMPTS[0], 0)
    too_many = BenchRunner(tiny_model, max_new_tokens=6, trained={4: la}, options=bench_options(extra={"pass": {"num_lookahead": 5}}))
    with pytest.raises(ValueError, match="between 1 and"):
        too_many.run(spec, PROMPTS[0], 0)


def test_confirm_groups_is_the_median_ratio_of_interleaved_timed_runs(tiny_model, monkeypatch):
    """confirm_groups on a fake clock: the two calls cost 1.0 s per run, the group set 0.8 s -> 1.25."""
    import pass_ref.experiments.bench as bench

    clock = [0.0]
    seen = []

    def fake_decode(model, drafter, ids, config):
        seen.append(tuple(drafter.groups))
        clock[0] += 1.0 if drafter.groups == () else 0.8

    monkeypatch.setattr(bench, "decode", fake_decode)
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    la = random_lookahead(tiny_model, 4, 0)
    gain = bench.confirm_groups(tiny_model, "pass-fused", la, {"num_lookahead": 4, "groups": (0, 1)}, PROMPTS[0], rounds=3)
    assert gain == pytest.approx(1.25)
    assert seen.count(()) == seen.count((0, 1)) == 4  # one untimed run of each, then 3 pairs
    assert seen[2:4] == [(), (0, 1)] and seen[4:6] == [(0, 1), ()]  # interleaved, order rotating
    with pytest.raises(ValueError, match="rounds"):
        bench.confirm_groups(tiny_model, "pass-fused", la, {"num_lookahead": 4, "groups": (0, 1)}, PROMPTS[0], rounds=0)


def test_plan_runs():
    specs = plan_runs(all_methods(), [0.0, 0.8], [2, 4], unk_lookaheads=[4])
    keys = [s.key for s in specs]
    assert "prompt-lookup/L=10/T=0" in keys and "prompt-lookup/L=10/T=0.8" not in keys  # greedy only
    assert sum(s.method == "pass" for s in specs) == 4 and sum(s.method == "pass-unk" for s in specs) == 2
    assert len(keys) == len(set(keys))
    with pytest.raises(ValueError, match="unknown method"):
        plan_runs(["ar", "medusa"], [0.0], [4])
    with pytest.raises(ValueError, match="temperatures"):
        plan_runs(["ar"], [-1.0], [4])
    with pytest.raises(ValueError, match="look-ahead"):
        plan_runs(["pass"], [0.0], [0])


def test_every_method_gives_the_same_greedy_tokens(runner, tmp_path):
    """End to end: table shape, and every method reproduces our greedy AR tokens (float64)."""
    specs = plan_runs(all_methods(), [0.0, 1.0], [2, 4], options=runner.options, prompt_lookup_tokens=3)
    records, completed = run_benchmark(runner, PROMPTS, specs, records_path=tmp_path / "records.jsonl", progress=False)
    assert completed and len(records) == len(PROMPTS) * len(specs)
    assert load_records(tmp_path / "records.jsonl") == records
    curve = measure_forward_latency(runner.model, range(1, 6), context=8, repeats=2)
    rows = summarize(records, latency=curve, draft_call_s=curve.t(1))
    assert {(r["method"], r["L"], r["temperature"]) for r in rows} == {(s.method, s.L, s.temperature) for s in specs}
    for r in rows:
        assert r["prompts"] == len(PROMPTS) and r["new_tokens"] == 20 * len(PROMPTS)
        if r["temperature"] == 0:
            assert r["same_as_ar"] == 1.0, r  # exactness across all methods, HF's included
        else:
            assert r["same_as_ar"] is None
        if r["method"] in ("pass", "pass-unk", "speculative"):
            assert len(r["acceptance"]) == r["L"] and r["predicted_speedup"] > 0
        if r["method"] in ("ar", "hf"):
            assert r["tokens_per_call"] == 1.0
    ar = next(r for r in rows if r["method"] == "ar" and r["temperature"] == 0)
    assert ar["speedup_vs_ar"] == 1.0
    # Sampling differs from greedy (the temperature really reached every method).
    sampled = [x["tokens"] for x in records if x["temperature"] == 1.0 and x["prompt_index"] == 0]
    greedy = next(x["tokens"] for x in records if x["method"] == "ar" and x["temperature"] == 0 and x["prompt_index"] == 0)
    assert any(s != greedy for s in sampled)
    table = format_markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "PaSS (two calls)" in table
    write_results(tmp_path, {"command": "test"}, rows, latency=curve)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["completed"] and len(saved["summary"]) == len(rows) and saved["latency"]["new_tokens"] == [1, 2, 3, 4, 5]
    assert (tmp_path / "summary.csv").read_text().count("\n") == len(rows) + 1
    figures = save_figures(rows, tmp_path)
    assert {p.name for p in figures} >= {"speed_vs_L_T0.png", "speedup_vs_temperature.png", "acceptance_per_position.png"}


def test_a_wrong_method_is_caught_by_same_as_ar(runner):
    """Negative control: a record whose tokens differ from AR shows up as < 100 %."""
    records, _ = run_benchmark(runner, PROMPTS[:2], plan_runs(["ar", "pass"], [0.0], [2]), progress=False)
    broken = [
        dict(r, tokens=[(t + 1) % 32 for t in r["tokens"]]) if r["method"] == "pass" and r["prompt_index"] == 0 else r for r in records
    ]
    row = next(r for r in summarize(broken) if r["method"] == "pass")
    assert row["same_as_ar"] == 0.5


def test_interrupt_keeps_partial_results(runner, tmp_path, monkeypatch):
    """Ctrl-C mid-run: the records so far are returned and already on disk."""
    real_run = runner.run
    calls = {"n": 0}

    def flaky(spec, prompt, index):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_run(spec, prompt, index)

    monkeypatch.setattr(runner, "run", flaky)
    records, completed = run_benchmark(
        runner, PROMPTS, plan_runs(["ar", "hf"], [0.0], [4]), records_path=tmp_path / "r.jsonl", progress=False
    )
    assert not completed and len(records) == 3
    assert len(load_records(tmp_path / "r.jsonl")) == 3
    rows = summarize(records)
    assert sum(r["prompts"] for r in rows) == 3


def test_speedups_are_medians_of_paired_ratios():
    """summarize pairs each run with the baseline run on the same prompt."""

    def rec(method, i, s100):
        return {
            "method": method,
            "L": 4 if method == "pass" else None,
            "temperature": 0.0,
            "prompt_index": i,
            "seconds_per_100": s100,
            "new_tokens": 100,
            "model_calls": 50 if method == "pass" else 100,
            "accepted": [],
            "drafted": [],
            "tokens": [i],
        }

    records = [rec("ar", 0, 2.0), rec("pass", 0, 1.0), rec("ar", 1, 4.0), rec("pass", 1, 1.0), rec("ar", 2, 3.0), rec("pass", 2, 3.0)]
    row = next(r for r in summarize(records) if r["method"] == "pass")
    assert row["speedup_vs_ar"] == 2.0  # ratios 2, 4, 1
    assert row["tokens_per_call"] == 2.0
    assert math.isnan(row["speedup_vs_hf"])  # no HF runs


def test_runner_refuses_missing_lookahead(runner):
    with pytest.raises(ValueError, match="no look-ahead"):
        runner.run(RunSpec("pass", 7, 0.0), PROMPTS[0], 0)


def test_cli_bench_rejects_bad_lists():
    from pass_ref.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--temperature", "hot"])
    args = build_parser().parse_args(["bench", "--lookahead", "2,4,6,8", "--temperature", "0,0.8"])
    assert args.lookahead == [2, 4, 6, 8] and args.temperature == [0.0, 0.8]
