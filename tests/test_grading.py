"""Grading a teacher can trust: the referee calls the graders itself, on hidden cases, with the package's
answers blocked while a student's function runs; printed lines count for nothing."""

import json
import re

import pytest
import torch

import pass_ref
from pass_ref.course import assignments as A
from pass_ref.course import referee as R
from pass_ref.experiments.results_doc import ROOT

SOLUTIONS = ROOT / "notebooks" / "solutions" / "07_assignments_solutions.ipynb"
HANDOUT = ROOT / "notebooks" / "07_assignments.ipynb"
NAMES = [name for name, _ in R.ANSWERS.values()]


def defined_in(notebook, names=NAMES) -> dict:
    """The functions ``names`` as the notebook's cells define them (only those cells and its imports run)."""
    namespace = {"torch": torch, "pass_ref": pass_ref}
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and any(re.search(rf"^def {n}\(", source, re.M) for n in names):
            exec(compile(source, str(notebook), "exec"), namespace)
    return {name: namespace[name] for name in names if name in namespace} | {"torch": torch, "pass_ref": pass_ref}


@pytest.fixture(scope="module")
def solutions():
    return defined_in(SOLUTIONS)


def referee(namespace, tmp_path) -> dict:
    out = tmp_path / "result.json"
    results = R.referee(namespace, nonce="abc", out=out)
    assert json.loads(out.read_text())["nonce"] == "abc"
    return {key: r["status"] for key, r in results.items()}


def test_every_assignment_has_a_named_function_and_a_grader():
    assert set(R.ANSWERS) == set(A.ASSIGNMENTS)
    assert len(set(NAMES)) == len(NAMES)
    for key in R.ANSWERS:
        R.references(key)  # every blocked reference exists


def test_solutions_score_full_marks_on_hidden_cases(solutions, tmp_path):
    assert set(solutions) >= set(NAMES)
    assert referee(solutions, tmp_path) == {key: A.PASS for key in R.ANSWERS}


def test_stubs_and_missing_functions_score_nothing(tmp_path):
    stubs = defined_in(HANDOUT)
    assert set(stubs) >= set(NAMES)  # the handout defines every function, as a stub
    assert set(referee(stubs, tmp_path).values()) == {A.NOT_IMPLEMENTED}
    assert set(referee({}, tmp_path).values()) == {A.NOT_IMPLEMENTED}


def test_delegating_to_the_package_fails_with_a_message(solutions, tmp_path):
    """Each way of handing the work to pass_ref fails the assignment it delegates; the others still pass."""
    from pass_ref.course import theory
    from pass_ref.training.train import lookahead_targets
    from pass_ref.verify import residual_distribution

    cheats = dict(solutions)
    cheats["residual"] = pass_ref.residual_distribution  # the package's own function
    cheats["accept_block"] = lambda q, p, drafts, r: pass_ref.verify.verify_drafts(q, p, drafts, None)  # through the package
    cheats["tokens_per_call"] = lambda alpha, L: theory.pass_tokens_per_call(alpha, L)  # an imported name
    cheats["targets"] = lambda tokens, i, L: lookahead_targets(tokens[None], torch.tensor([[i]]), L)[0, 0]

    def compare(alpha, L, _f=theory.expected_accepted):  # carried in a default argument
        return (2 + _f(alpha, L)) / 2, 1 + _f(alpha, L)

    cheats["compare"] = compare
    results = R.referee(cheats, nonce="n", out=tmp_path / "r.json")
    delegated = {"residual", "accept_block", "tokens_per_call", "targets", "compare"}
    for key, result in results.items():
        if key in delegated:
            assert result["status"] == A.FAIL and "write it yourself" in result["message"], (key, result)
        else:
            assert result["status"] == A.PASS, (key, result)
    assert pass_ref.residual_distribution is residual_distribution  # everything is put back
    assert theory.pass_tokens_per_call(0.5, 2) == pytest.approx(1.375)


def test_hidden_cases_differ_from_the_notebook(solutions):
    """A function that only memorised the cases the notebook shows fails the hidden ones."""
    seen = {}

    def recording(alpha, L):
        seen[(alpha, L)] = solutions["tokens_per_call"](alpha, L)
        return seen[(alpha, L)]

    assert A.grade_tokens_per_call(recording, verbose=False).passed
    memorised = lambda alpha, L: seen.get((alpha, L), 0.0)  # noqa: E731
    assert A.grade_tokens_per_call(memorised, verbose=False).passed  # the cases the notebook shows
    with A.hidden_cases(R.HIDDEN_OFFSET):
        assert A.grade_tokens_per_call(memorised, verbose=False).status == A.FAIL


def test_answers_in_float32_lists_and_arrays_are_accepted(solutions):
    """The same meaning in another container or in float32 passes; a float16 answer is told why it fails."""
    import numpy as np

    residual = solutions["residual"]
    assert A.grade_residual(lambda q, p: residual(q.float(), p.float()), verbose=False).passed
    assert A.grade_residual(lambda q, p: residual(q, p).tolist(), verbose=False).passed
    assert A.grade_residual(lambda q, p: residual(q, p).numpy(), verbose=False).passed
    half = A.grade_residual(lambda q, p: residual(q, p).half(), verbose=False)
    assert half.status == A.FAIL and "float32 or float64" in half.message
    targets = solutions["targets"]
    assert A.grade_lookahead_targets(lambda tokens, i, L: np.asarray(targets(tokens, i, L)), verbose=False).passed


def test_the_closed_form_is_not_a_simulation(solutions):
    closed = lambda alpha, L, iterations, generator: solutions["tokens_per_call"](alpha, L)  # noqa: E731
    grade = A.grade_simulation(closed, verbose=False)
    assert grade.status == A.FAIL and "simulate, do not compute" in grade.message
    assert A.grade_simulation(solutions["simulate"], verbose=False).passed


def test_the_negative_control_is_not_a_plausible_bug(solutions):
    from pass_ref.sampling import sample

    def accept_every_draft(q, p, drafts, generator):
        return drafts.shape[0], sample(q[-1], generator)

    grade = A.grade_broken_verifier(accept_every_draft, verbose=False)
    assert grade.status == A.FAIL and "not a plausible bug" in grade.message
    assert A.grade_broken_verifier(solutions["broken_verify"], verbose=False).passed


def test_a_crash_names_the_case():
    grade = A.grade_accept_block(lambda q, p, drafts, r: 1 / 0, verbose=False)
    assert grade.status == A.FAIL and "ZeroDivisionError in case 0 (K=1" in grade.message


@pytest.mark.slow
def test_parallel_grading_gives_each_kernel_a_share_of_the_cpus(tmp_path, monkeypatch):
    """Two kernels at once must not each start one thread per core: each sees OMP_NUM_THREADS = cpus // jobs.
    With one job the kernel keeps this process's setting (the negative control: no cap appears)."""
    from pass_ref.course import grading as G

    cell = ("import os, pathlib\n"
            "pathlib.Path('threads.txt').open('a').write(os.environ.get('OMP_NUM_THREADS', 'unset') + '\\n')")
    notebook = {"cells": [{"cell_type": "code", "execution_count": None, "id": "t", "metadata": {}, "outputs": [],
                           "source": cell}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    for name in ("a.ipynb", "b.ipynb"):
        (tmp_path / name).write_text(json.dumps(notebook))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(G, "_cpus", lambda: 4)
    G.grade_path(tmp_path, timeout=120, jobs=2)
    assert (tmp_path / "threads.txt").read_text().split() == ["2", "2"]
    (tmp_path / "threads.txt").unlink()
    G.grade_path(tmp_path, timeout=120, jobs=1)
    assert (tmp_path / "threads.txt").read_text().split() == ["unset", "unset"]
