"""Distribution exactness of every method in the table: sampled outputs follow the target's law.

A 4-token vocabulary lets us enumerate all 64 three-token continuations. Each test draws
2000 seeded generations and applies a chi-square test (cells with expected count < 5
pooled). Tolerance: p-value > 1e-3 passes. The negative control (the same loop with a
verifier that accepts every draft) must give p < 1e-6 with a quarter of the samples, which
shows the test can fail (it gives p < 1e-40 for every method and setting). Both are parametrised over ``pass_ref.METHODS``: a new method
gets them without new code (``law_check`` is also what the toy-method test runs).
"""

import pytest
import torch
from conftest import drafter_for, drafting_methods

import pass_ref
from pass_ref import DecodingConfig, SamplingConfig, decode
from pass_ref.course.exactness import chi_square_test, empirical_counts, exact_sequence_law
from pass_ref.sampling import sample

V, M, N = 4, 3, 2000  # vocabulary (the `small` fixture of conftest.py), tokens checked, samples
PROMPT = [1, 2]
CONFIGS = {"T1": dict(temperature=1.0), "T0.7-topk3": dict(temperature=0.7, top_k=3), "T1-topp0.8": dict(temperature=1.0, top_p=0.8)}
# Beyond the table's defaults: PaSS with prompt lookup and a two-call fallback, a lookup of 2-grams.
VARIANTS = {
    "hybrid-two-call": ("hybrid", dict(fused=False, lookup_tokens=3)),
    "lookup-2gram": ("lookup", dict(max_ngram=2, num_draft_tokens=3)),
}


def accept_every_draft(q, p, drafts, generator):
    """A wrong verifier: keeps all K drafts and samples the bonus token."""
    return drafts.shape[0], sample(q[-1], generator)


def law_check(model, lookahead, method, config, *, samples=N, verify_fn=pass_ref.verify_drafts, **options):
    """Chi-square of ``samples`` seeded generations of ``method`` against the enumerated law of M tokens, and the
    fraction of drafts accepted (both acceptance and rejection must be exercised for the test to mean much)."""
    sampling = SamplingConfig(**config)
    outs = []
    for seed in range(samples):
        drafter = drafter_for(method, model, lookahead, **dict(options))  # fresh: drafters keep per-run state
        run = DecodingConfig(M + 1, sampling, generator=torch.Generator().manual_seed(seed))  # the first M tokens are counted
        outs.append(decode(model, drafter, PROMPT, run, verify_fn=verify_fn))
    law = exact_sequence_law(model, PROMPT, M, sampling).numpy()
    result = chi_square_test(empirical_counts([o.new_tokens.tolist() for o in outs], V, M), law)
    drafted = sum(sum(o.stats.drafted) for o in outs)
    return result, sum(sum(o.stats.accepted) for o in outs) / max(drafted, 1)


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("method", list(pass_ref.METHODS))
def test_sampling_matches_exact_law(small, method, config):
    """Every method samples the first 3 tokens from q's exact law (T = 1, top-k, top-p)."""
    model, la = small
    result, accepted = law_check(model, la, method, CONFIGS[config])
    if method != "ar":
        assert 0.05 < accepted < 0.95, accepted  # both acceptance and rejection were exercised
    assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants_match_exact_law(small, variant):
    """Options beyond the table's defaults keep the law (T = 1)."""
    model, la = small
    method, options = VARIANTS[variant]
    result, accepted = law_check(model, la, method, CONFIGS["T1"], **options)
    assert 0.05 < accepted < 0.95, accepted
    assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("method", drafting_methods())
def test_negative_control_accept_all_is_caught(small, method, config):
    """The same test, with a quarter of the samples, rejects the loop when its verifier accepts every draft."""
    model, la = small
    result, _ = law_check(model, la, method, CONFIGS[config], samples=N // 4, verify_fn=accept_every_draft)
    assert result.pvalue < 1e-6, result
