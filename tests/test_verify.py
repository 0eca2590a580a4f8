"""Exact tests of the accept/reject/residual kernel on hand-built distributions."""

import pytest
import torch

from pass_ref import acceptance_probs, residual_distribution, verify_drafts

V = 5


def onehot(i, v=V):
    p = torch.zeros(v, dtype=torch.float64)
    p[i] = 1.0
    return p


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_all_accepted_gives_bonus_token():
    """Drafts that q gives probability 1 are all accepted, and the next token is q_{K+1}'s."""
    drafts = torch.tensor([1, 3, 0])
    q = torch.stack([onehot(1), onehot(3), onehot(0), onehot(4)])  # (K+1, V)
    p = torch.stack([onehot(1), onehot(3), onehot(0)])
    for seed in range(20):
        n, nxt = verify_drafts(q, p, drafts, gen(seed))
        assert (n, int(nxt)) == (3, 4)


def test_first_rejected_samples_residual():
    """A rejection at t=0 stops the block and samples from norm(max(0, q - p)) only."""
    drafts = torch.tensor([2, 2])
    q0 = torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0], dtype=torch.float64)  # q gives the draft no mass
    p0 = torch.tensor([0.5, 0.0, 0.5, 0.0, 0.0], dtype=torch.float64)
    q = torch.stack([q0, onehot(2), onehot(3)])
    p = torch.stack([p0, onehot(2)])
    seen = set()
    for seed in range(50):
        n, nxt = verify_drafts(q, p, drafts, gen(seed))
        assert n == 0
        seen.add(int(nxt))
    assert seen == {1}  # residual = max(0, q - p) = mass on token 1 only


def test_zero_target_probability_is_always_rejected():
    """A draft token with q(x) = 0 is rejected whatever r is, even when p(x) is tiny."""
    drafts = torch.tensor([4])
    q = torch.stack([torch.tensor([0.25, 0.25, 0.25, 0.25, 0.0], dtype=torch.float64), onehot(0)])
    p = torch.tensor([[0.25, 0.25, 0.25, 0.25 - 1e-12, 1e-12]], dtype=torch.float64)
    assert acceptance_probs(q, p, drafts).item() == 0.0
    for seed in range(100):
        n, nxt = verify_drafts(q, p, drafts, gen(seed))
        assert n == 0 and int(nxt) != 4


def test_residual_has_no_mass_where_target_not_above_draft():
    """norm(max(0, q - p)) is zero wherever q <= p, and a distribution elsewhere."""
    g = gen(1)
    for _ in range(200):
        q = torch.softmax(torch.randn(V, dtype=torch.float64, generator=g) * 3, -1)
        p = torch.softmax(torch.randn(V, dtype=torch.float64, generator=g) * 3, -1)
        r = residual_distribution(q, p)
        assert torch.all(r[q <= p] == 0)
        assert torch.isclose(r.sum(), torch.tensor(1.0, dtype=torch.float64))
        assert torch.allclose(r, (q - p).clamp_min(0) / (q - p).clamp_min(0).sum())


def test_residual_of_identical_distributions_is_target():
    """When q == p nothing can be rejected; the residual falls back to q instead of 0/0."""
    q = torch.tensor([0.2, 0.3, 0.5, 0.0, 0.0], dtype=torch.float64)
    assert torch.equal(residual_distribution(q, q.clone()), q)


def test_acceptance_probability_is_min_one_ratio():
    """min(1, q(x)/p(x)) per position, with hand-computed values."""
    q = torch.tensor([[0.1, 0.9, 0, 0, 0], [0.6, 0.4, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.float64)
    p = torch.tensor([[0.5, 0.5, 0, 0, 0], [0.3, 0.7, 0, 0, 0]], dtype=torch.float64)
    a = acceptance_probs(q, p, torch.tensor([0, 0]))
    assert torch.allclose(a, torch.tensor([0.2, 1.0], dtype=torch.float64))


def test_greedy_one_hot_reduces_to_argmax_matching():
    """With one-hot q and p, accept while draft == argmax q, then emit argmax q."""
    drafts = torch.tensor([1, 2, 3])
    q = torch.stack([onehot(1), onehot(2), onehot(0), onehot(4)])
    p = torch.stack([onehot(1), onehot(2), onehot(3)])
    n, nxt = verify_drafts(q, p, drafts, gen())
    assert (n, int(nxt)) == (2, 0)


def test_acceptance_frequency_matches_ratio():
    """Seeded: a draft with min(1, q/p) = 0.3 is accepted 30 % +- 1.5 % of 20000 times."""
    q = torch.tensor([[0.3, 0.7, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.float64)
    p = torch.tensor([[1.0, 0, 0, 0, 0]], dtype=torch.float64)
    g = gen(123)
    hits = sum(verify_drafts(q, p, torch.tensor([0]), g)[0] for _ in range(20000))
    assert abs(hits / 20000 - 0.3) < 0.015


def test_shape_mismatch_raises():
    """K drafts need K+1 target rows."""
    with pytest.raises(ValueError, match="K\\+1"):
        verify_drafts(torch.ones(2, V) / V, torch.ones(2, V) / V, torch.tensor([0, 1]))


def test_zero_drafts_is_plain_sampling():
    """K = 0 (autoregressive step): no acceptance, the token comes from q_1."""
    q = onehot(3)[None]
    n, nxt = verify_drafts(q, q.new_empty(0, V), torch.empty(0, dtype=torch.long), gen())
    assert (n, int(nxt)) == (0, 3)
