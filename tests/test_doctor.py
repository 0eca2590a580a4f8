"""The machine check (python -m pass_ref doctor): features, call accounting, recommendation."""

import pytest
import torch
from conftest import needs_compiler, random_lookahead

import pass_ref
from pass_ref.cli import main
from pass_ref.experiments.doctor import DoctorReport, MethodRun, machine_features, method_table, record_calls
from pass_ref.experiments.latency import LatencyCurve


def curve(ratios, dtype):
    return LatencyCurve(new_tokens=list(range(1, len(ratios) + 1)), seconds=[0.01 * r for r in ratios], context=8,
                        repeats=1, device="cpu", dtype=dtype, model="x")


def test_machine_features_name_the_cpu():
    info = machine_features("cpu")
    assert info["device"] == "cpu" and info["threads"] >= 1 and info["cpu"]
    if info["flags"] is not None:
        assert set(info["flags"]) == {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}


def test_call_sizes_and_recommendation(tiny_model):
    """Every method's calls are recorded; the cheaper dtype and the method with fewer, cheaper calls win."""
    la = pass_ref.LookaheadEmbeddings.from_random(tiny_model, 3, seed=0)
    prompts = [torch.tensor([[1, 2, 3, 1, 2]]), torch.tensor([[4, 5, 4, 5]])]
    runs = record_calls(method_table(tiny_model, la, 3, lookup_tokens=4), prompts, 12)
    by = {r.name: r for r in runs}
    assert by["autoregressive"].call_sizes == [[5] + [1] * 11, [4] + [1] * 11]
    assert all(len(r.call_sizes) == 2 and r.new_tokens == 24 and r.tokens == [12, 12] for r in runs)
    assert by["PaSS (two calls)"].calls > by["PaSS (one call)"].calls
    flat = curve([1.0] * 40, "bfloat16")  # extra inputs are free: the method with fewest calls wins
    steep = curve([float(n) for n in range(1, 41)], "float32")  # t(n) = n t(1): autoregressive wins
    report = DoctorReport(machine_features(), {"float32": steep, "bfloat16": flat}, runs, 3, 1.0)
    best = report.recommendation()
    assert best["dtype"] == "bfloat16"
    assert best["tokens_per_call"] == max(r.tokens_per_call for r in runs)
    assert all(r["predicted_speedup"] <= 1.0 + 1e-9 for r in report.rows() if r["dtype"] == "float32")
    text = report.format()
    assert "Recommendation" in text and "Break-even" in text and "groups to use" not in text  # no measured acceptance
    report.acceptance = [0.5, 0.2, 0.05]
    assert report.groups() == {"float32": {"groups": [], "predicted": pytest.approx(report.groups()["float32"]["two_call"]),
                                           "two_call": pytest.approx((2 + 0.75) / (2 * 4))},
                               "bfloat16": {"groups": [0, 1, 2, 3], "predicted": pytest.approx(1.75), "two_call": pytest.approx(1.375)}}
    assert "| bfloat16 | {0, 1, 2, 3} | 1.75 | 1.38 |" in report.format()
    assert report.lookahead_choices()["bfloat16"]["num_lookahead"] == 3  # flat: all L
    assert report.lookahead_choices()["float32"] == {"num_lookahead": 1, "predicted": pytest.approx(2.5 / 4),  # steep: one
                                                     "every": pytest.approx(2.75 / 8), "ms_per_token": pytest.approx(16.0),
                                                     "interpolated": False}
    assert "| float32 | 1 of 3 | 0.62 | 0.34 |" in report.format()


def test_predicted_speedup_is_the_median_over_prompts():
    """One highly repetitive prompt does not speak for the others: the prediction is the per-prompt median."""
    flat = curve([1.0] * 20, "bfloat16")  # every call costs t(1): the speed-up is tokens per call
    run = MethodRun("m", 4, new_tokens=40, calls=16, tokens=[8, 8, 24],
                    call_sizes=[[1] * 4, [1] * 8, [1] * 4])  # 2, 1 and 6 tokens per call
    assert run.predicted_speedup(flat) == pytest.approx(2.0)  # pooled it would be 40 / 16 = 2.5
    assert run.tokens_per_call == pytest.approx(2.5)
    with pytest.raises(ValueError, match="every prompt"):
        MethodRun("m", 4, new_tokens=8, calls=4, call_sizes=[[1] * 4]).predicted_speedup(flat)  # no per-prompt tokens


def test_doctor_names_a_shorter_draft_when_it_is_predicted_fastest(tiny_model):
    """The recorded runs read all L look-ahead tokens; where reading fewer is predicted faster than the
    recommendation, the verdict says so (and says nothing where it is not)."""
    la = pass_ref.LookaheadEmbeddings.from_random(tiny_model, 3, seed=0)
    runs = record_calls(method_table(tiny_model, la, 3, lookup_tokens=4), [torch.tensor([[1, 2, 3, 1, 2]])], 12)
    two_cheap = curve([1.0, 1.0] + [float(n) for n in range(3, 41)], "float32")  # t(2) = t(1), then each input costs t(1)
    report = DoctorReport(machine_features(), {"float32": two_cheap}, runs, 3, 1.0, acceptance=[0.9, 0.1, 0.0])
    said = " ".join(report.verdict())
    assert "reading only [LA]_1..1 of the set's 3 in float32 is predicted 6.9 ms per token (1.45×" in said
    report.acceptance = [0.9, 0.9, 0.9]
    report.curves["float32"] = curve([1.0] * 4 + [float(n) for n in range(5, 41)], "float32")  # L + 1 inputs cost one: read all
    assert "reading only" not in " ".join(report.verdict())


def test_doctor_chooses_fewer_lookahead_tokens_on_a_compiled_curve(tiny_model, tmp_path):
    """The compiled curve has the doctor's sizes (1, L + 1, ...) only; K < L is still a candidate there, its
    t(K + 1) interpolated (fastest compiles it), and docs/RESULTS.md says so. Control: the same points as an
    eager curve offer only K = L, and RESULTS then has no such line."""
    from pass_ref.experiments.doctor import save_report
    from pass_ref.experiments.results_doc import doctor_section

    la = pass_ref.LookaheadEmbeddings.from_random(tiny_model, 3, seed=0)
    runs = record_calls(method_table(tiny_model, la, 3, lookup_tokens=4), [torch.tensor([[1, 2, 3, 1, 2]])], 12)
    points = dict(new_tokens=[1, 4, 7, 10], seconds=[0.010, 0.016, 0.022, 0.028], context=8, repeats=1, device="cpu", model="x")
    compiled = LatencyCurve(**points, dtype="float32", padded=True)
    report = DoctorReport(machine_features(), {"float32 compiled": compiled}, runs, 3, 1.0, acceptance=[0.9, 0.1, 0.0])
    choice = report.lookahead_choices()["float32 compiled"]
    # K = 1: two calls of 2 inputs (t(2) = 12 ms on the line) for 2 + 0.9 tokens; K = 3: two calls of 4 (16 ms) for 3.
    assert choice == {"num_lookahead": 1, "predicted": pytest.approx(2.9 / 2.4), "every": pytest.approx(3.0 / 3.2),
                      "ms_per_token": pytest.approx(10 / (2.9 / 2.4)), "interpolated": True}
    assert "interpolated between the sizes compiled here" in report.format()
    assert "reading only [LA]_1..1 of the set's 3 in float32 compiled" in " ".join(report.verdict())
    (tmp_path / "doctor").mkdir()
    save_report(report, tmp_path / "doctor" / "a.json")
    said = "\n".join(doctor_section(tmp_path))
    assert ("look-ahead tokens (predicted × AR from the set's stored acceptance, K against all L; compiled t(K + 1) interpolated "
            "between the compiled sizes): float32 compiled: K = 1, 1.21× against 0.94×.") in said
    report.curves = {"float32": LatencyCurve(**points, dtype="float32")}  # unpadded with the same points: only K = 3 measured
    unpadded = report.lookahead_choices()["float32"]
    assert unpadded["num_lookahead"] == 3 and not unpadded["interpolated"]
    save_report(report, tmp_path / "doctor" / "a.json")
    assert "look-ahead tokens (" not in "\n".join(doctor_section(tmp_path))


@pytest.mark.slow
def test_doctor_cli_on_the_default_model(capsys, tmp_path):
    """The whole check on the real model, shrunk: a report with both dtypes and a recommendation."""
    out = tmp_path / "doctor.json"
    assert main(["doctor", "--prompts", "1", "--max-new-tokens", "8", "--repeats", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "float32" in text and "bfloat16" in text and "Recommendation" in text
    assert out.is_file()


def test_cli_refuses_non_positive_sizes(capsys):
    for argv in (["doctor", "--prompts", "0"], ["bench", "--prompts", "0"], ["bench", "--max-new-tokens", "-3"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "must be >= 1" in capsys.readouterr().err


def test_recommendation_is_measured_against_the_fastest_plain_decoding(tiny_model):
    """A bfloat16 method that beats bfloat16 decoding but not float32 decoding is no win: the doctor says plain decoding wins."""
    la = pass_ref.LookaheadEmbeddings.from_random(tiny_model, 3, seed=0)
    prompts = [torch.tensor([[1, 2, 3, 1, 2]]), torch.tensor([[4, 5, 4, 5]])]
    runs = record_calls(method_table(tiny_model, la, 3, lookup_tokens=4), prompts, 12)
    fp32 = curve([float(n) for n in range(1, 41)], "float32")  # t(1) = 10 ms, every extra input costs a full t(1)
    bf16 = curve([3.0] * 40, "bfloat16")  # flat, but t(1) = 30 ms
    report = DoctorReport(machine_features(), {"float32": fp32, "bfloat16": bf16}, runs, 3, 1.0)
    assert report.fastest_plain() == ("float32", pytest.approx(10.0))
    best_bf16 = max((r for r in report.rows() if r["dtype"] == "bfloat16"), key=lambda r: r["predicted_speedup"])
    assert best_bf16["predicted_speedup"] > 1.0 > best_bf16["vs_fastest_plain"]  # wins in its dtype, loses overall
    said = " ".join(report.verdict())
    assert "plain decoding in float32 (10.0 ms per token) is the fastest here" in said and "Why:" in said
    report.curves["bfloat16"] = curve([0.5] * 40, "bfloat16")  # now bfloat16 is fast too: a drafting method wins overall
    said = " ".join(report.verdict())
    assert "the fastest plain decoding measured here (bfloat16, 5.0 ms per token)" in said


def test_results_doc_names_the_doctors_model_and_its_command(tiny_model, tmp_path):
    """A report on another model says which, and its command reproduces it with --model; an older report
    without the field was the default model's."""
    import json

    from pass_ref.experiments.doctor import DEFAULT_MODEL_LABEL, save_report
    from pass_ref.experiments.results_doc import doctor_section

    la = pass_ref.LookaheadEmbeddings.from_random(tiny_model, 3, seed=0)
    runs = record_calls(method_table(tiny_model, la, 3, lookup_tokens=4), [torch.tensor([[1, 2, 3, 1, 2]])], 8)
    folder = tmp_path / "out" / "doctor"
    folder.mkdir(parents=True)
    padded = curve([1.0, 1.2], "float32")
    padded.padded = True
    report = DoctorReport(machine_features(), {"float32": curve([1.0] * 40, "float32"), "float32 compiled": padded}, runs, 3, 1.0,
                          model="my-org/coder", freezing={"float32 compiled": {1: {"frozen": False, "plain_over_frozen": 0.9}}},
                          autotuned=["float32 compiled"])
    assert "Model: my-org/coder" in report.format() and "(its matmuls were autotuned at compile time" in report.format()
    assert "(size 1 runs its plain-weight graph: plain weights took 0.90× the frozen graph's time here)" in report.format()
    save_report(report, folder / "b.json")
    old = report.to_dict()
    del old["model"], old["freezing"], old["autotuned"], old["curves"]["float32 compiled"]  # an older report: the default model, eager only
    (folder / "a.json").write_text(json.dumps(old), encoding="utf-8")
    text = "\n".join(doctor_section(tmp_path / "out"))
    assert f"### {DEFAULT_MODEL_LABEL} · " in text and "`python -m pass_ref doctor --out out/doctor/a.json`" in text
    assert "### my-org/coder · " in text
    assert "`python -m pass_ref --model my-org/coder doctor --compiled --autotune float32 --out out/doctor/b.json`" in text
    assert text.count("Matmuls autotuned at compile time: float32 compiled.") == 1
    assert "Compiled graphs timed frozen against plain weights: float32 compiled, size 1 plain: plain weights took 0.90×" in text
    assert text.count("Compiled graphs timed") == 1  # the older report has no such line


@needs_compiler
@pytest.mark.compile
def test_compiled_doctor_times_its_one_token_graph_both_ways(monkeypatch):
    """``doctor --compiled`` on a tiny model: the compiled curve comes from the one-token graph it chose, and says which."""
    from pass_ref.experiments.doctor import run_doctor

    class Tokenizer:
        def __call__(self, text, return_tensors=None):
            return type("Encoded", (), {"input_ids": torch.tensor([[ord(c) % 32 for c in text[:12]]])})()

    model = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=0, dtype=torch.float32)
    la = random_lookahead(model, 4)
    la.metadata["heldout_greedy"] = {"acceptance": [0.5, 0.2, 0.1, 0.0]}
    monkeypatch.setattr(pass_ref.models, "load_model", lambda name, dtype, device: (model, Tokenizer()))
    monkeypatch.setattr(pass_ref.trained, "load_lookahead", lambda domain, L, recipe, model: la)
    monkeypatch.setattr("pass_ref.experiments.data.humaneval_prompts", lambda n: ["def f(x):", "return x + 1"][:n])
    report = run_doctor("tiny", dtypes=(torch.float32,), compiled=True, prompts=1, max_new_tokens=8, repeats=1, progress=False)
    choice = report.freezing["float32 compiled"]
    assert set(choice) == {1} and choice[1]["frozen"] == (choice[1]["plain_over_frozen"] >= 1)
    assert report.curves["float32 compiled"].padded and report.to_dict()["freezing"] == report.freezing
    kind = "frozen, prepacked" if choice[1]["frozen"] else "plain-weight"
    assert f"(size 1 runs its {kind} graph: plain weights took {choice[1]['plain_over_frozen']:.2f}×" in report.format()
    assert report.autotuned == [] and "autotuned" not in report.format()
    for autotune, compiled in ((["float16"], True), ("float32", True), (["float32"], False)):
        with pytest.raises(ValueError, match="autotune names"):
            run_doctor("tiny", dtypes=(torch.float32,), compiled=compiled, autotune=autotune, progress=False)
