"""Every autograder passes a right answer, fails a wrong one, and reports an unfinished stub."""

import pytest
import torch

from pass_ref.course import assignments as A
from pass_ref.course import theory
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


def test_broken_verifier_grader():
    """A verifier that accepts every draft is caught; the real, exact verifier is not a 'broken' one."""
    assert A.grade_broken_verifier(accept_every_draft, verbose=False).status == A.PASS
    assert A.grade_broken_verifier(verify_drafts, verbose=False).status == A.FAIL
    assert A.grade_broken_verifier(stub, verbose=False).status == A.NOT_IMPLEMENTED
