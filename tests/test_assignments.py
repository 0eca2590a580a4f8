"""Every autograder passes a right answer, fails a wrong one, and reports an unfinished stub."""

import pytest
import torch

from pass_ref.course import assignments as A
from pass_ref.course import theory
from pass_ref.course.exactness import samples_needed
from pass_ref.verify import acceptance_probs, residual_distribution, verify_drafts


def stub(*args, **kwargs):
    raise NotImplementedError


def right_block(q, p, drafts, r):
    K = drafts.shape[0]
    n = int((r < acceptance_probs(q, p, drafts)).long().cumprod(0).sum())
    return n, residual_distribution(q[n], p[n]) if n < K else q[K]


def wrong_block(q, p, drafts, r):  # keeps checking after a rejection
    K = drafts.shape[0]
    n = int((r < acceptance_probs(q, p, drafts)).sum())
    return n, residual_distribution(q[n], p[n]) if n < K else q[K]


def right_simulation(alpha, L, iterations, generator):
    return theory.simulate_pass_tokens_per_iteration(alpha, L, iterations, generator) / 2


def wrong_simulation(alpha, L, iterations, generator):  # forgets the exact token
    return (theory.simulate_pass_tokens_per_iteration(alpha, L, iterations, generator) - 1) / 2


def accept_every_draft(q, p, drafts, generator):
    from pass_ref.sampling import sample

    return drafts.shape[0], sample(q[-1], generator)


CASES = [
    (A.grade_residual, residual_distribution, lambda q, p: (q - p).clamp_min(0)),  # wrong: not normalised
    (A.grade_residual, residual_distribution, lambda q, p: (q - p).clamp_min(0) / (q - p).clamp_min(0).sum()),  # wrong: NaN when q == p
    (A.grade_accept_block, right_block, wrong_block),
    (A.grade_tokens_per_call, theory.pass_tokens_per_call, lambda a, L: (1 + theory.expected_accepted(a, L)) / 2),
    (A.grade_simulation, right_simulation, wrong_simulation),
    (
        A.grade_speedup_prediction,
        lambda t, a: theory.tokens_per_iteration_from_acceptance(a) * t[1] / (2 * t[len(a) + 1]),
        lambda t, a: theory.tokens_per_iteration_from_acceptance(a) * t[1] / (2 * t[len(a)]),  # wrong: t(L)
    ),
]


@pytest.mark.parametrize("grader, right, wrong", CASES)
def test_grader_separates_right_from_wrong(grader, right, wrong, capsys):
    assert grader(right).status == A.PASS
    bad = grader(wrong)
    assert bad.status == A.FAIL and bad.message
    assert grader(stub).status == A.NOT_IMPLEMENTED
    printed = capsys.readouterr().out
    assert "PASS" in printed and "FAIL" in printed and "NOT IMPLEMENTED" in printed


def test_grader_survives_a_crash():
    grade = A.grade_tokens_per_call(lambda a, L: 1 / 0, verbose=False)
    assert grade.status == A.FAIL and "ZeroDivisionError" in grade.message


def no_residual_verify(q, p, drafts, generator):  # a plausible bug: a rejected draft is replaced by a sample of q
    from pass_ref.sampling import sample

    n = int((torch.rand(drafts.shape[0], generator=generator, dtype=q.dtype) < acceptance_probs(q, p, drafts)).long().cumprod(0).sum())
    return n, sample(q[n], generator)


def test_broken_verifier_grader():
    """A plausible bug is caught; accepting every draft (the negative control) is not a plausible bug; the real,
    exact verifier is not a 'broken' one."""
    assert A.grade_broken_verifier(no_residual_verify, verbose=False).status == A.PASS
    assert A.grade_broken_verifier(accept_every_draft, verbose=False).status == A.FAIL
    assert A.grade_broken_verifier(verify_drafts, verbose=False).status == A.FAIL
    assert A.grade_broken_verifier(stub, verbose=False).status == A.NOT_IMPLEMENTED


def right_drafting_call(model, cache, vectors, pending):
    embeds = torch.cat([model.get_input_embeddings()(torch.tensor([pending])), vectors[None]], dim=1)
    logits = model(inputs_embeds=embeds, cache=cache, use_cache=True).logits[0]
    cache.crop(-vectors.shape[0])
    return logits[-(vectors.shape[0] + 1):]


def uncropped_drafting_call(model, cache, vectors, pending):  # wrong: keeps the look-ahead KV
    embeds = torch.cat([model.get_input_embeddings()(torch.tensor([pending])), vectors[None]], dim=1)
    return model(inputs_embeds=embeds, cache=cache, use_cache=True).logits[0, -(vectors.shape[0] + 1):]


def right_block_mask(insertions, T, L):
    K = insertions.shape[0]
    block, slot = torch.arange(K * L) // L, torch.arange(K * L) % L
    real = torch.arange(T)[None, :] <= insertions[block][:, None]
    own = (block[:, None] == block[None, :]) & (slot[None, :] <= slot[:, None])
    return torch.cat([real, own], dim=1)


def leaky_block_mask(insertions, T, L):  # wrong: every block also sees the other blocks
    K = insertions.shape[0]
    block, slot = torch.arange(K * L) // L, torch.arange(K * L) % L
    real = torch.arange(T)[None, :] <= insertions[block][:, None]
    return torch.cat([real, slot[None, :] <= slot[:, None]], dim=1)


def fused(latency, acceptance, groups, ignore_groups=False):
    from pass_ref.experiments.latency import LatencyCurve, predicted_fused_speedup

    curve = LatencyCurve(list(latency), list(latency.values()), 0, 1, "cpu", "float32", "x")
    return predicted_fused_speedup(curve, acceptance, None if ignore_groups else groups)


PASS_CASES = [
    (A.grade_drafting_call, right_drafting_call, uncropped_drafting_call),
    (A.grade_lookahead_targets, lambda tokens, i, L: tokens[i + 2 : i + 2 + L], lambda tokens, i, L: tokens[i + 1 : i + 1 + L]),
    (A.grade_block_mask, right_block_mask, leaky_block_mask),
    (
        A.grade_pass_vs_classic,
        lambda a, L: ((2 + theory.expected_accepted(a, L)) / 2, 1 + theory.expected_accepted(a, L)),
        lambda a, L: (1 + theory.expected_accepted(a, L), 1 + theory.expected_accepted(a, L)),  # wrong: PaSS with one call
    ),
    (A.grade_fused_prediction, fused, lambda t, a, g: fused(t, a, g, ignore_groups=True)),
]


def right_verify(q, p, drafts, generator):
    from pass_ref.sampling import sample

    K = drafts.shape[0]
    r = torch.rand(K, generator=generator, dtype=q.dtype)
    n = int((r < acceptance_probs(q, p, drafts)).long().cumprod(0).sum())
    return n, sample(residual_distribution(q[n], p[n]) if n < K else q[K], generator)


def train_loop(model, start, sequences, steps, generator, frozen=True):
    model.requires_grad_(not frozen)  # wrong when False: the model's weights train too
    L, (N, T) = start.shape[0], sequences.shape
    vectors = torch.nn.Parameter(start.clone())
    params = [vectors] + ([] if frozen else [p for p in model.parameters()])
    optimizer = torch.optim.AdamW(params, lr=0.01)
    for _ in range(steps):
        rows = torch.randint(0, N, (8,), generator=generator)
        i = int(torch.randint(0, T - L - 1, (1,), generator=generator))
        batch = sequences[rows]
        embeds = torch.cat([model.get_input_embeddings()(batch[:, : i + 1]), vectors.expand(len(rows), L, -1)], dim=1)
        logits = model(inputs_embeds=embeds).logits[:, -L:]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, i + 2 : i + 2 + L].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return vectors.detach()


def wrong_samples_needed(e, w, significance, power):  # wrong: M degrees of freedom instead of M - 1
    from scipy.stats import chi2, ncx2

    distance, dof, n = ((w - e) ** 2 / e).sum(), len(e), 1
    while ncx2.sf(chi2.isf(significance, dof), dof, n * distance) < power:
        n += max(1, n // 50)
    return n


NEW_CASES = [
    (A.grade_verify, right_verify, no_residual_verify),
    (A.grade_implied_acceptance, lambda ar, ps, L, cost: theory.implied_acceptance(ar / ps, L, cost),
     lambda ar, ps, L, cost: theory.implied_acceptance(ar / ps, L, 1.0)),  # wrong: ignores the cost of the larger call
    (A.grade_chi_square_power, samples_needed, wrong_samples_needed),
    (A.grade_training_loop, train_loop, lambda *args: train_loop(*args, frozen=False)),  # wrong: the model trains too
]


@pytest.mark.parametrize("grader, right, wrong", NEW_CASES)
def test_new_graders_separate_right_from_wrong(grader, right, wrong, capsys):
    """The four deeper assignments: a right answer passes, a plausible wrong one fails, a stub is reported."""
    test_grader_separates_right_from_wrong(grader, right, wrong, capsys)


@pytest.mark.parametrize("grader, right, wrong", PASS_CASES)
def test_pass_graders_separate_right_from_wrong(grader, right, wrong, capsys):
    """The PaSS assignments: a right answer passes, a plausible wrong one fails, a stub is reported."""
    test_grader_separates_right_from_wrong(grader, right, wrong, capsys)


def test_fail_messages_name_the_case_not_the_formula():
    """A FAIL says which case and expected vs got; it never prints the formula to write."""
    bad = A.grade_speedup_prediction(lambda t, a: 1.0, verbose=False)
    assert bad.status == A.FAIL and "expected" in bad.message and "t(L+1)" not in bad.message
    bad = A.grade_tokens_per_call(lambda a, L: 1.0, verbose=False)
    assert "hint" not in bad.message and "alpha=" in bad.message


def test_there_are_enough_assignments_on_pass():
    assert len(A.ASSIGNMENTS) >= 15 and sum(on_pass for _, _, on_pass in A.ASSIGNMENTS.values()) >= 10
    assert {level for _, level, _ in A.ASSIGNMENTS.values()} == {"easy", "medium", "hard"}


@pytest.mark.slow
def test_grade_cli_scores_a_right_and_a_wrong_submission(tmp_path, capsys):
    """`python -m pass_ref grade` runs notebooks headless: the solutions score full marks; the stubs with a cell that
    prints every PASS line and a delegated answer score 0 (forged output earns nothing, delegation is named)."""
    import json
    import shutil

    from pass_ref.cli import main
    from pass_ref.experiments.results_doc import ROOT

    shutil.copy(ROOT / "notebooks/solutions/07_assignments_solutions.ipynb", tmp_path / "right.ipynb")
    handout = json.loads((ROOT / "notebooks/07_assignments.ipynb").read_text())
    titles = [grader(stub, verbose=False).assignment for grader, _, _ in A.ASSIGNMENTS.values()]
    forged = "".join(f"print('PASS            {t}: 60 random cases')\n" for t in titles)
    delegated = "import pass_ref\nresidual = pass_ref.residual_distribution"
    cells = [{"cell_type": "code", "execution_count": None, "id": f"extra{i}", "metadata": {}, "outputs": [], "source": source}
             for i, source in enumerate((forged, delegated))]
    (tmp_path / "forged.ipynb").write_text(json.dumps(dict(handout, cells=handout["cells"] + cells)))
    assert main(["grade", str(tmp_path), "--timeout", "300", "--jobs", "2"]) == 0
    table = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:] if line.startswith("|")}
    total = len(A.ASSIGNMENTS)
    assert rows["right.ipynb"].rstrip(" |").endswith(f"{total} / {total}") and "FAIL" not in rows["right.ipynb"]
    assert rows["forged.ipynb"].rstrip(" |").endswith(f"0 / {total}"), rows["forged.ipynb"]
    assert "FAIL" in rows["forged.ipynb"] and "residual is (or carries) the package's pass_ref.verify.residual_distribution" in table
