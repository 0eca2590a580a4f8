"""The documentation is generated where it can be, and self-contained: what a clone has is what it names."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from pass_ref.experiments.results_doc import ROOT, readme_with_headline, render

TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".cfg", ".txt", ".yml", ".toml", ""}
MISSING_NOTES = re.compile(r"\b(PAPER|ARCHITECTURE|STYLE)\.md\b|\.\./shared\b")
ISSUE_NUMBER = re.compile(r"\b[Ii]ssues?[- ]#?\d+|\b[Ii]ssue-\d")
REPO_PATH = re.compile(r"(?<![\w./])((?:docs|notebooks|tools|results|tests|pass_ref)/[\w./-]*\w\.(?:md|py|ipynb|json|cfg|txt))\b")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    keep = []
    for name in names:
        path = ROOT / name
        if path.suffix in TEXT_SUFFIXES and not name.startswith("results/") and path.is_file() and path.stat().st_size < 2_000_000:
            keep.append(path)
    return keep


@pytest.fixture(scope="module")
def texts():
    try:
        return {p: p.read_text(encoding="utf-8") for p in tracked_text_files()}
    except (FileNotFoundError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")


def test_results_doc_is_fresh():
    """docs/RESULTS.md is exactly what `make results-doc` renders from results/**/*.json."""
    assert (ROOT / "docs" / "RESULTS.md").read_text(encoding="utf-8") == render(), "run `make results-doc`"


def test_readme_is_short_and_its_headline_generated():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert readme == readme_with_headline(readme), "run `make results-doc`"


def test_headline_names_each_runs_size_when_they_differ(tmp_path):
    """One footer for runs of one size; a run of another size says its own in its row."""
    from pass_ref.experiments.results_doc import fastest_headline

    def run(name, tokens):
        plain = {"method": "ar", "label": "autoregressive", "setup": "bfloat16 compiled", "ms_per_token": 80.0, "fastest_plain": True,
                 "speedup_vs_fastest": 1.0, "recipe": None, "tokens_per_call": 1.0}
        pass_row = {**plain, "method": "pass", "label": "PaSS (two calls)", "fastest_plain": False, "speedup_vs_fastest": 1.1,
                    "recipe": "paper", "tokens_per_call": 1.3}
        path = tmp_path / name / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"summary": [plain, pass_row], "config": {"model": name, "prompts": 4, "max_new_tokens": tokens,
                                                                               "dtypes": ["bfloat16"], "device": "cpu", "threads": 2}}))
        return path

    same = fastest_headline([run("a", 64), run("b", 64)])
    assert "Greedy, 4 HumanEval prompts × 64 tokens," in same and "prompts × 64 tokens)" not in same
    mixed = fastest_headline([tmp_path / "a" / "results.json", run("c", 256)])
    assert "(bfloat16, 4 prompts × 64 tokens)" in mixed and "(bfloat16, 4 prompts × 256 tokens)" in mixed
    assert "× 64 tokens," not in mixed and "the dtypes, prompts and tokens in the first column" in mixed


def test_no_reference_to_files_a_clone_lacks(texts):
    """No tracked file points to notes outside the repository or to a repository path that does not exist."""
    problems = []
    for path, text in texts.items():
        if path.name == "test_docs.py":
            continue
        problems += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in MISSING_NOTES.finditer(text)]
        for m in REPO_PATH.finditer(text):
            target = m.group(1)
            if any(c in target for c in "*<>{}") or target.startswith("pass_ref/trained/") and "L" in target:
                continue
            if not (ROOT / target).exists():
                problems.append(f"{path.relative_to(ROOT)}: {target}")
    assert not problems, problems


def test_no_issue_numbers(texts):
    """Issue numbers mean nothing to a reader of the repository."""
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p, t in texts.items() if p.name != "test_docs.py" for m in ISSUE_NUMBER.finditer(t)]
    assert not found, found


def test_the_checks_can_fail(tmp_path):
    """Negative controls: a stale page, a missing file and an issue number are each caught."""
    assert render(tmp_path) != render()  # an empty results folder renders a different page
    notes, number = "see " + "PAPER" + ".md §2", "as " + "issue" + " 5 found"  # built here so this file names neither
    assert MISSING_NOTES.search(notes) and ISSUE_NUMBER.search(number)
    assert REPO_PATH.search("see docs/nothing_here.md").group(1) == "docs/nothing_here.md"


def test_table2_names_the_set_it_was_measured_with():
    """A Table 2 run reads vectors from a path that later training overwrites, so its section says which set it used."""
    from pass_ref.experiments.results_doc import _set_trained

    recipe = {"steps": 100, "data": "self-mixed", "distill_windows": 384}
    assert _set_trained({"lookahead_recipe": str(recipe)}).endswith("100 training steps on 384 self-distilled windows.")
    assert _set_trained({"lookahead_recipe": {"steps": 50, "data": "corpus"}}).endswith("50 training steps.")
    assert _set_trained({}) == "" and _set_trained({"lookahead_recipe": "not a dict"}) == ""
    staged = {"lookahead_recipe": {**recipe, "steps": 300, "prompts": "functions"}, "lookahead_stage_steps": [300, 300, 300]}
    assert _set_trained(staged).endswith("300 + 300 + 300 training steps in 3 stages, each from the previous one's vectors, "
                                         "the last on 384 self-distilled windows, their prompts ending after a function's docstring.")


def test_machine_line_names_the_matrix_instructions():
    """The machine line says which bfloat16 instructions the CPU has: they decide t(n), so each kind reads apart."""
    from pass_ref.experiments.results_doc import _machine

    def line(**flags):
        base = {"avx2": True, "avx512f": False, "avx512_bf16": False, "amx_tile": False, "amx_bf16": False}
        return _machine({"machine": {"cpu": "X", "threads": 2, "flags": {**base, **flags}}})

    assert line(avx512f=True, avx512_bf16=True, amx_tile=True, amx_bf16=True) == "X, 2 threads, with AMX and AVX-512 BF16"
    assert line(avx512f=True, avx512_bf16=True) == "X, 2 threads, with AVX-512 BF16, no AMX"
    assert line(avx512f=True) == "X, 2 threads, AVX-512 without BF16"
    assert line() == "X, 2 threads, AVX2 only, no AVX-512"
