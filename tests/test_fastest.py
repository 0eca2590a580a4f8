"""The comparison with the fastest plain decoding (``pass_ref.experiments.fastest``): planning, the paired ratios,
the verdict, and one tiny end-to-end run (eager and compiled, transformers' static recipe included)."""

import json

import pytest
import torch
from conftest import needs_compiler, random_lookahead

import pass_ref
from pass_ref.experiments import fastest
from pass_ref.experiments.fastest import Row, format_markdown, machine_slug, plan_rows, static_sizes, summarize, verdict
from pass_ref.experiments.results_doc import _compiled_note


def record(row: Row, prompt_index: int, ms: float, tokens=(1, 2, 3), calls=3, predicted=None):
    return {"row": row.key, "setup": row.setup, "method": row.method, "recipe": row.recipe, "L": 4, "prompt_index": prompt_index,
            "ms_per_token": ms, "new_tokens": 3, "model_calls": calls, "accepted": [], "drafted": [], "tokens": list(tokens),
            "predicted_ms_per_token": predicted}


def test_plan_runs_transformers_only_eager_and_one_row_per_recipe():
    """HF runs appear in the eager setups only; look-ahead methods once per recipe; sizes follow the methods."""
    rows = plan_rows(["ar", "hf-static", "pass"], ["bfloat16"], ["paper", "extended"], compiled=True)
    assert [r.key for r in rows] == ["bfloat16 eager/ar", "bfloat16 eager/hf-static", "bfloat16 eager/pass/paper",
                                     "bfloat16 eager/pass/extended", "bfloat16 compiled/ar", "bfloat16 compiled/pass/paper",
                                     "bfloat16 compiled/pass/extended"]
    assert static_sizes(["ar", "pass", "pass-fused"], 4, (0, 1)) == (1, 5, 13)
    assert static_sizes(["lookup", "hybrid"], 4, (0, 1), lookup_tokens=8, hybrid_groups=(0,)) == (1, 9, 13)
    assert static_sizes(["pass-fused"], 4, "auto") == (1, 5, 9, 13)  # no group (the drafting call), one group, two
    assert static_sizes(["pass-fused"], 2, None) == (1, 9)  # every group: 1 + 2 + 3 * 2
    assert static_sizes(["pass"], 4, None, pass_lookahead="auto") == (1, 2, 3, 4, 5)  # K + 1 for every K <= L
    assert static_sizes(["pass", "pass-unk"], 4, None, pass_lookahead=2) == (1, 3, 5)  # pass-unk keeps its L
    with pytest.raises(ValueError, match="unknown method"):
        plan_rows(["nope"], ["float32"], ["paper"], compiled=False)
    with pytest.raises(ValueError, match="dtypes"):
        plan_rows(["ar"], ["float16"], ["paper"], compiled=False)
    with pytest.raises(ValueError, match="not 'speculative'"):
        static_sizes(["speculative"], 4, (0,))


def test_speedups_are_paired_against_the_fastest_plain_decoding_of_any_setup():
    """The fastest plain row is picked over every setup; ratios are medians of per-prompt ratios; the verdict says who wins."""
    hf_static, ar32, pass16 = Row("bfloat16", False, "hf-static"), Row("float32", False, "ar"), Row("bfloat16", True, "pass", "paper")
    ar16c = Row("bfloat16", True, "ar")
    records = []
    for i, (a, b, c, d) in enumerate([(20, 40, 18, 25), (22, 44, 20, 26), (30, 60, 20, 31)]):
        records += [record(hf_static, i, a), record(ar32, i, b), record(pass16, i, c, tokens=(1, 2, 4), predicted=c / 1.1),
                    record(ar16c, i, d)]
    rows = {r["row"]: r for r in summarize(records)}
    assert rows[hf_static.key]["fastest_plain"] and not rows[ar32.key]["fastest_plain"]
    assert rows[pass16.key]["speedup_vs_fastest"] == pytest.approx(20 / 18)  # median of 20/18, 22/20, 30/20
    assert rows[pass16.key]["speedup_vs_setup_ar"] == pytest.approx(25 / 18)  # against bfloat16 compiled AR: median of 25/18, 26/20, 31/20
    assert rows[ar32.key]["speedup_vs_fastest"] == pytest.approx(0.5)
    assert rows[pass16.key]["same_as_setup_ar"] == 0.0 and rows[ar16c.key]["same_as_setup_ar"] == 1.0
    assert rows[pass16.key]["measured_over_predicted"] == pytest.approx(1.1)
    assert "best look-ahead drafting (the paper's method): PaSS (two calls) (paper set), bfloat16 compiled: 20.0 ms/token, " \
           "1.11x the fastest" in verdict(list(rows.values()))
    slow = [dict(r, speedup_vs_fastest=0.9) if r["method"] == "pass" else r for r in rows.values()]
    assert verdict(slow).endswith("plain decoding is the fastest here")
    hybrid = dict(rows[pass16.key], method="hybrid", label="hybrid", speedup_vs_fastest=2.0)
    assert "best drafting overall: hybrid (paper set)" in verdict([*rows.values(), hybrid])
    assert "**HF generate, static cache compiled**" in format_markdown(list(rows.values()))
    assert fastest.groups_note({"groups": [0, 1]}) == ", A = {0, 1}" and fastest.groups_note({}) == ""
    assert fastest.groups_note({"groups": []}) == ", A = {} (two calls)" and fastest.groups_note({"groups": None}) == ", every A"
    assert fastest.groups_note({"L": 4, "num_lookahead": 2}) == ", [LA]_1..2 of 4"
    assert fastest.groups_note({"L": 4, "num_lookahead": 4}) == ""


def test_machine_slug_names_the_matrix_instructions():
    """Results folders are named after what decides t(n); a CPU held below its features counts as the lesser one."""
    flags = dict(avx2=True, avx512f=True, avx512_bf16=True, amx_tile=False, amx_bf16=False)
    assert machine_slug({"flags": flags}) == "avx512-bf16"
    assert machine_slug({"flags": {**flags, "amx_bf16": True}}) == "amx"
    assert machine_slug({"flags": {**flags, "avx512_bf16": False, "avx512f": False}}) == "avx2"
    assert machine_slug({"flags": flags, "isa_limits": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}) == "avx2"


class _Tokenizer:
    def __call__(self, text, add_special_tokens=False):
        return type("Encoded", (), {"input_ids": [ord(c) % 32 for c in text[:12]]})()


@needs_compiler
@pytest.mark.compile
def test_tiny_end_to_end(monkeypatch, tmp_path):
    """Every setup runs on a tiny float32 model (the static path compiled, transformers' recipe too) and writes its files."""
    model = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=0, dtype=torch.float32)
    model.generation_config.pad_token_id = 0
    la = random_lookahead(model, 4)
    la.metadata["heldout_greedy"] = {"acceptance": [0.5, 0.2, 0.1, 0.0]}  # what groups="auto" chooses from
    monkeypatch.setattr(pass_ref.models, "load_model", lambda name, dtype: (model, _Tokenizer()))
    monkeypatch.setattr(pass_ref.trained, "load_lookahead", lambda domain, L, recipe, model: la)
    monkeypatch.setattr("pass_ref.experiments.data.humaneval_prompts", lambda n: ["def f(x):", "return x + 1", "class A:"][:n])
    result = fastest.fastest_decoding("tiny", methods=["ar", "hf", "hf-static", "pass", "pass-fused", "hybrid"], dtypes=["float32"],
                                      recipes=["paper"], prompts=2, max_new_tokens=12, out=tmp_path, progress=False,
                                      calibration=[3, 1, 4, 1, 5, 9, 2, 6], prefill_sizes=[16])
    rows = {r["row"]: r for r in result.rows}
    assert set(rows) == {"float32 eager/ar", "float32 eager/hf", "float32 eager/hf-static", "float32 eager/pass/paper",
                         "float32 eager/hybrid/paper", "float32 compiled/ar", "float32 compiled/pass/paper",
                         "float32 compiled/hybrid/paper", "float32 eager/pass-fused/paper", "float32 compiled/pass-fused/paper"}
    assert all(r["prompts"] == 2 and r["ms_per_token"] > 0 for r in rows.values())
    assert rows["float32 compiled/pass/paper"]["same_as_setup_ar"] == 1.0  # float32: the same greedy tokens
    assert rows["float32 compiled/hybrid/paper"]["same_as_setup_ar"] == 1.0
    assert all(r["outside_forward"] >= 0 for r in rows.values() if r["method"] not in ("hf", "hf-static"))
    for setup in ("eager", "compiled"):  # auto groups: chosen on the setup's own probe, at most AUTO_GROUPS of them
        fused = rows[f"float32 {setup}/pass-fused/paper"]
        assert fused["same_as_setup_ar"] == 1.0 and len(fused["groups"]) <= fastest.AUTO_GROUPS
        note = result.config["group_choices"][f"float32 {setup}/pass-fused/paper L=4"]
        assert note["groups"] == fused["groups"]  # how they were chosen is recorded: timed only if predicted faster
        assert ("measured_gain" in note) == bool(note["predicted"])
        assert result.config["static_sizes"] == [1, 2, 3, 4, 5, 9, 13]  # two-call PaSS's K + 1 for every K <= L too
        two = rows[f"float32 {setup}/pass/paper"]  # pass_lookahead="auto": the K read is recorded with how it was chosen
        note = result.config["lookahead_choices"][f"float32 {setup}/pass/paper L=4"]
        assert two["num_lookahead"] == note["num_lookahead"] and 1 <= two["num_lookahead"] <= 4
        assert ("measured_gain" in note) == (note["predicted"] < 4) and two["same_as_setup_ar"] == 1.0
        runs = [r for r in result.records if r["row"] == f"float32 {setup}/pass/paper"]
        assert all(max(r["call_sizes"][1:]) <= two["num_lookahead"] + 1 for r in runs)
    tokens = {r["row"]: r["tokens"] for r in result.records if r["prompt_index"] == 0}
    assert tokens["float32 eager/hf"] == tokens["float32 eager/ar"] == tokens["float32 compiled/ar"]
    assert rows["float32 eager/pass/paper"]["measured_over_predicted"] > 0 and rows["float32 compiled/ar"]["measured_over_predicted"] > 0
    assert rows["float32 eager/hf-static"]["measured_over_predicted"] is None  # its compiled step is not what the probes time
    for r in result.records:  # every call timed; runs bracketed by t(n) timings of the sizes they use
        assert len(r["call_seconds"] or []) == (len(r["call_sizes"]) if r["method"] not in ("hf", "hf-static") else 0)
        expected = {"hf-static": None, "ar": [1], "hf": [1]}.get(r["method"], [1, 2, 3, 4, 5, 9, 13])
        assert (None if "bracket" not in r else sorted(r["bracket"])) == expected
        assert all(len(times) == 2 * fastest.BRACKET_REPEATS for times in r.get("bracket", {}).values())
    assert {"float32 compiled", "float32 compiled, freezing choice", "float32 eager hf-static"} == set(result.compile_seconds)
    choice = result.config["freezing"]["float32 compiled"]  # freeze="auto": the one-token graph timed both ways
    frozen = result.config["frozen_sizes"]["float32 compiled"]
    assert set(choice) == {1} and (1 in frozen) == choice[1]["frozen"] == (choice[1]["plain_over_frozen"] >= 1)
    assert set(frozen) - {1} == {2, 3, 4, 5, 9, 13}  # the larger calls stay frozen
    assert "float32 compiled [" in _compiled_note(result.config) and "size 1 " in _compiled_note(result.config)
    assert {p.name for p in tmp_path.iterdir()} == {"summary.md", "results.json", "records.jsonl"}
    assert result.config["prefill_sizes"] == [16] and "prefill sizes [16]" in _compiled_note(result.config)
    assert result.config["prefill_calls"]["float32 compiled"]["16"] > 0  # the compiled prompts ran padded (same tokens above)
    assert result.config["max_cache_len"] == 64  # what the runs need (<= 12 prompt tokens + 12 + 13), rounded up to 64


def test_compiled_note_reads_old_and_new_reports():
    """RESULTS says which compiled sizes ran frozen; reports from before the choice existed froze every size."""
    assert _compiled_note({"compiled": True}) == " Every compiled size frozen (prepacked weights)."
    assert _compiled_note({"compiled": False}) == ""
    note = _compiled_note({"compiled": True, "frozen_sizes": {"float32 compiled": [5, 9], "bfloat16 compiled": [1, 5, 9]},
                           "freezing": {"float32 compiled": {"1": {"frozen": False, "plain_over_frozen": 0.91}},
                                        "bfloat16 compiled": {"1": {"frozen": True, "plain_over_frozen": 1.2}}}})
    assert note == (" Frozen (prepacked) sizes: float32 compiled [5, 9] (size 1 plain: plain weights took 0.91× the frozen "
                    "graph's time), bfloat16 compiled [1, 5, 9] (size 1 frozen: plain weights took 1.20× the frozen graph's time).")
    assert _compiled_note({"compiled": True, "frozen_sizes": {"bfloat16 compiled": [1]}, "autotune": ["bfloat16"]}).endswith(
        " Matmuls autotuned at compile time (ATen's kernels against inductor's generated ones): bfloat16 compiled.")
    with pytest.raises(ValueError, match="freeze must be"):
        fastest.fastest_decoding("tiny", freeze="some")
    for autotune, compiled in ((["float16"], True), ("bfloat16", True), (["float32"], False)):
        with pytest.raises(ValueError, match="autotune names"):
            fastest.fastest_decoding("tiny", dtypes=["float32"], autotune=autotune, compiled=compiled)


def test_setups_that_cannot_fit_are_refused_before_the_first_compile(monkeypatch):
    """Every setup stays loaded to the end: their frozen graphs and the other dtypes' models are counted up front."""
    import pass_ref.static as static

    model = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=0, dtype=torch.float32)
    monkeypatch.setattr(pass_ref.models, "load_model", lambda name, dtype: (model, _Tokenizer()))
    params = sum(p.numel() for p in model.parameters())
    one = static.frozen_weight_bytes(model, sizes=(1,))  # a decode graph of float32 weights
    sizes = fastest.static_sizes(["ar", "pass"], 4, "auto", pass_lookahead="auto")
    assert sizes == (1, 2, 3, 4, 5)
    copies = static.frozen_weight_bytes(model, sizes=sizes, prefill_sizes=[16])  # float32, then bfloat16's half
    assert fastest.setups_bytes(model, ["float32", "bfloat16"], sizes, True, [16]) == (
        int(static.FROZEN_OVERHEAD * copies) + int(static.FROZEN_OVERHEAD * copies // 2) + params * 2)
    assert fastest.setups_bytes(model, ["float32"], sizes, [1], []) == int(static.FROZEN_OVERHEAD * one)
    monkeypatch.setattr(static, "available_memory", lambda device: one)
    with pytest.raises(MemoryError, match="run one dtype per process"):
        fastest.fastest_decoding("tiny", methods=["ar", "pass"], dtypes=["float32", "bfloat16"], progress=False)


def test_prediction_uses_the_timings_that_bracket_the_run():
    """prefill + t(size) of every later call; t from the run's bracket (median) where it has one, else the round's probe."""
    from pass_ref.experiments.latency import LatencyCurve

    curve = LatencyCurve(new_tokens=[1, 5], seconds=[0.010, 0.020], context=8, repeats=1, device="cpu", dtype="float32", model="m")
    setup = fastest._Setup("float32 eager", model=None, prefill_s={0: 0.05}, rounds={0: curve})
    run = {"method": "pass", "call_sizes": [10, 5, 5, 1], "prompt_index": 0, "new_tokens": 4}
    assert setup.predicted_ms(run) == pytest.approx(1000 * (0.05 + 0.02 + 0.02 + 0.01) / 4)
    run["bracket"] = {5: [0.03, 0.03, 0.05, 0.02]}  # median 0.03; t(1) still from the round's probe
    assert setup.predicted_ms(run) == pytest.approx(1000 * (0.05 + 0.03 + 0.03 + 0.01) / 4)
    run["bracket"] = {"5": [0.03, 0.03, 0.05, 0.02], "1": [0.001] * 4}  # read back from records.jsonl: string keys
    assert setup.predicted_ms(run) == pytest.approx(1000 * (0.05 + 0.03 + 0.03 + 0.001) / 4)
    assert setup.predicted_ms({**run, "method": "hf-static"}) is None


def test_autotune_section_reads_the_tools_report(tmp_path):
    """RESULTS renders ``tools/autotune_gain.py``'s JSON: per dtype and size, both timings, the paired ratio, the bound."""
    from pass_ref.experiments.doctor import machine_features
    from pass_ref.experiments.results_doc import autotune_section

    assert autotune_section(tmp_path) == []
    rows = [{"size": 1, "default_ms": 29.1, "autotuned_ms": 21.4, "paired_ratio": 0.76, "default_over_bound": 2.53,
             "autotuned_over_bound": 1.86}, {"size": 5, "default_ms": 67.9, "autotuned_ms": 39.7, "paired_ratio": 0.59}]
    report = {"command": "python tools/autotune_gain.py --dtypes bfloat16", "model": "SmolLM2-135M-Instruct",
              "machine": machine_features(), "bandwidth": 23.4e9, "sizes": [1, 5], "rounds": 8, "repeats": 5, "context": 200,
              "minutes": 9.5, "dtypes": {"bfloat16": {"compile_seconds": {"default": 95.0, "autotuned": 337.0},
                                                      "same_greedy_tokens": True, "bound_ms": 11.5, "rows": rows,
                                                      "prefill_rows": [{"prompt_tokens": 125, "eager_ms": 506.0, "default_ms": 506.0,
                                                                        "autotuned_ms": 349.0, "default_over_eager": 1.0,
                                                                        "autotuned_over_eager": 0.69}]}},
              "prefill": 128}
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "autotune_gain-smollm2-135m-avx512.json").write_text(json.dumps(report), encoding="utf-8")
    text = "\n".join(autotune_section(tmp_path))
    assert "### SmolLM2-135M-Instruct (smollm2-135m-avx512)" in text
    assert "`python tools/autotune_gain.py --dtypes bfloat16` (9.5 min)" in text
    assert "| bfloat16 | 1 | 29.1 | 21.4 | 0.76 | 2.53 → 1.86 (bound 11.5 ms) | 95 / 337 | True |" in text
    assert "| bfloat16 | 5 | 67.9 | 39.7 | 0.59 | – | 95 / 337 | True |" in text
    assert "padded to a compiled prefill size of 128" in text and "| bfloat16 | 125 | 506 | 1.00 | 0.69 |" in text
