"""Table 2 machinery: stop sequences in the shared loop, pass@k, the execution harness, the margin."""

import itertools
import json

import numpy as np
import pytest
import torch

from pass_ref import LookaheadEmbeddings, autoregressive_generate, pass_generate, speculative_generate, tiny_llama
from pass_ref.experiments.data import humaneval_problems
from pass_ref.experiments.humaneval import (
    StopOnStrings,
    check_completions,
    pass_at_k,
    run_table2,
    summarize_table2,
    truncate_completion,
)


class ByteTokenizer:
    """A tokenizer without downloads: one token per byte (ids 0..255); larger ids decode to nothing."""

    eos_token_id = None

    class _Encoded:
        def __init__(self, ids):
            self.input_ids = ids

    def __call__(self, text, add_special_tokens=False):
        return self._Encoded(list(text.encode("utf-8")))

    def decode(self, ids, skip_special_tokens=True):
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


def test_truncate_completion_cuts_at_first_stop_sequence():
    text = "    return x\n\ndef other():\n    pass\n#"
    assert truncate_completion(text) == "    return x\n"
    assert truncate_completion("    return 1\n    # a comment stays\n") == "    return 1\n    # a comment stays\n"
    assert truncate_completion("    if x:\n        return 1\nif __name__") == "    if x:\n        return 1"


def test_pass_at_k_matches_enumeration_of_subsets():
    for n, c, k in [(5, 2, 1), (5, 2, 2), (6, 1, 3), (10, 3, 10), (10, 0, 4), (4, 4, 2)]:
        outcomes = [1] * c + [0] * (n - c)
        subsets = list(itertools.combinations(outcomes, k))
        brute = sum(any(s) for s in subsets) / len(subsets)
        assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_stop_rule_ends_every_method_at_the_same_token():
    torch.manual_seed(0)
    model = tiny_llama(vocab_size=40, seed=3)
    prompt = torch.tensor([1, 5, 7, 2])
    full = autoregressive_generate(model, prompt, max_new_tokens=40).new_tokens.tolist()
    target = full[12]
    first = full.index(target)
    stop = lambda new: new[-1] == target  # noqa: E731
    expected = full[: first + 1]
    la = LookaheadEmbeddings.from_random(model, 4, seed=1)
    draft = tiny_llama(vocab_size=40, seed=4)
    outs = {
        "ar": autoregressive_generate(model, prompt, max_new_tokens=40, stop=stop),
        "pass": pass_generate(model, la, prompt, max_new_tokens=40, stop=stop),
        "speculative": speculative_generate(model, draft, prompt, num_draft_tokens=3, max_new_tokens=40, stop=stop),
    }
    for name, out in outs.items():
        assert out.new_tokens.tolist() == expected, name
        assert out.stats.new_tokens == len(expected)
    # Negative control: without the rule, generation runs past that token.
    assert len(autoregressive_generate(model, prompt, max_new_tokens=40).new_tokens) > len(expected)


def test_stop_on_strings_sees_sequences_across_tokens():
    stop = StopOnStrings(ByteTokenizer())
    assert not stop(list(b"    return 1\n"))
    assert stop(list(b"    return 1\nde") + list(b"f f():"))
    assert stop(list(b"x\n#"))
    with pytest.raises(ValueError):
        StopOnStrings(ByteTokenizer(), stops=("",))


@pytest.fixture(scope="module")
def problems():
    return {p["task_id"]: p for p in humaneval_problems()}


def test_execution_harness_passes_fails_and_times_out(problems):
    p = problems["HumanEval/0"]
    records = [
        {"task_id": p["task_id"], "completion": p["canonical_solution"]},
        {"task_id": p["task_id"], "completion": "    return True\n"},
        {"task_id": p["task_id"], "completion": "    while True:\n        pass\n"},
    ]
    results = check_completions(problems, records, timeout=1.0, progress=False)
    assert results[0] == "passed"
    assert results[1].startswith("failed")
    assert results[2] == "timed out"
    with pytest.raises(KeyError):
        check_completions(problems, [{"task_id": "HumanEval/999", "completion": ""}], progress=False)


def _records(method, passes, samples=1):
    return [
        {"task_id": f"HumanEval/{i}", "method": method, "result": "passed" if ok else "failed: x",
         "wall_s": 1.0 if method == "ar" else 0.5, "new_tokens": 50, "model_calls": 50 if method == "ar" else 30}
        for i, row in enumerate(passes) for ok in (row if samples > 1 else [row])
    ]


def test_margin_holds_same_quality_and_catches_a_difference():
    rng = np.random.default_rng(0)
    ar = rng.random(60) < 0.3
    same = summarize_table2(_records("ar", ar) + _records("pass", ar), k=1)
    assert same["difference"]["pass_minus_ar"] == 0.0 and same["difference"]["same_within_margin"]
    assert same["methods"]["ar"]["pass_at_k"] == pytest.approx(ar.mean())
    assert same["speedup_per_completion"] == pytest.approx(2.0)
    # Two independent draws of one quality: within the margin.
    other = rng.random(60) < 0.3
    assert summarize_table2(_records("ar", ar) + _records("pass", other), k=1)["difference"]["same_within_margin"]
    # Negative control: a method that loses half its solutions is flagged.
    worse = ar & (rng.random(60) < 0.3)
    flagged = summarize_table2(_records("ar", ar) + _records("pass", worse), k=1)
    assert not flagged["difference"]["same_within_margin"]
    assert flagged["difference"]["interval"][1] < 0


def test_pass_at_10_needs_ten_samples():
    rows = [[True] + [False] * 9, [False] * 10]
    table = summarize_table2(_records("ar", rows, samples=10) + _records("pass", rows, samples=10), k=10)
    assert table["methods"]["ar"]["pass_at_k"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        summarize_table2(_records("ar", [True, False]), k=10)


def test_table2_end_to_end_on_a_tiny_model(tmp_path):
    model = tiny_llama(vocab_size=300, seed=0, dtype=torch.float32, max_positions=2048)
    la = LookaheadEmbeddings.from_random(model, 4, seed=0)
    tables = run_table2(model, ByteTokenizer(), la, tmp_path, problems={"pass@1": 2}, max_new_tokens=12, timeout=2.0, progress=False)
    records = [json.loads(line) for line in (tmp_path / "completions.jsonl").read_text().splitlines()]
    assert len(records) == 4 and {r["method"] for r in records} == {"ar", "pass"}
    assert all(r["result"] is not None for r in records)
    # At T = 0.1 the tiny model is near-greedy, and both methods sample its own law.
    table = tables["pass@1"]
    assert table["problems"] == 2 and set(table["methods"]) == {"ar", "pass"}
    assert "difference" in table and "speedup_per_completion" in table
    saved = json.loads((tmp_path / "table2.json").read_text())
    assert saved["config"]["num_lookahead"] == 4
    assert "PaSS − AR" in (tmp_path / "table2.md").read_text()
    with pytest.raises(ValueError):
        run_table2(model, ByteTokenizer(), la, tmp_path, problems={"pass@3": 2}, progress=False)
