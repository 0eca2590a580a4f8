"""Distribution exactness: sampled outputs follow the target's law, computed by enumeration.

A 4-token vocabulary lets us enumerate all 64 three-token continuations. Each test draws
2000 seeded generations and applies a chi-square test (cells with expected count < 5
pooled). Tolerance: p-value > 1e-3 passes. The negative control (a verifier that accepts
every draft) must give p < 1e-6 on the same data size, which shows the test can fail.
"""

import pytest
import torch

import pass_ref
from pass_ref import LookaheadDrafter, SamplingConfig, speculative_loop
from pass_ref.course.exactness import chi_square_test, empirical_counts, exact_sequence_law, sample_sequences
from pass_ref.sampling import sample

V, M, N = 4, 3, 2000  # vocabulary (the `small` fixture of conftest.py), tokens checked, samples
PROMPT = [1, 2]
CONFIGS = [dict(temperature=1.0), dict(temperature=0.7, top_k=3), dict(temperature=1.0, top_p=0.8)]


def accept_every_draft(q, p, drafts, generator):
    """A wrong verifier: keeps all K drafts and samples the bonus token."""
    return drafts.shape[0], sample(q[-1], generator)


def law_of(model, config):
    return exact_sequence_law(model, PROMPT, M, SamplingConfig(**config)).numpy()


@pytest.mark.parametrize("config", CONFIGS, ids=["T1", "T0.7-topk3", "T1-topp0.8"])
def test_pass_sampling_matches_exact_law(small, config):
    """PaSS with untrained look-ahead vectors samples the first 3 tokens from q's exact law."""
    model, la = small
    outs = [pass_ref.pass_generate(model, la, PROMPT, max_new_tokens=M + 1, seed=s, **config) for s in range(N)]
    result = chi_square_test(empirical_counts([o.new_tokens.tolist() for o in outs], V, M), law_of(model, config))
    accepted = sum(sum(o.stats.accepted) for o in outs)
    drafted = sum(sum(o.stats.drafted) for o in outs)
    assert 0.1 * drafted < accepted < 0.9 * drafted  # both acceptance and rejection were exercised
    assert result.pvalue > 1e-3, result


def test_speculative_sampling_matches_exact_law(small):
    """Classic speculative sampling with a 1-layer draft model is exact too."""
    model, _ = small
    draft = pass_ref.truncated_draft_model(model, 1)
    samples = sample_sequences(
        lambda s: pass_ref.speculative_generate(model, draft, PROMPT, num_draft_tokens=2, max_new_tokens=M, temperature=1.0, seed=s).new_tokens,
        N,
    )
    assert chi_square_test(empirical_counts(samples, V, M), law_of(model, CONFIGS[0])).pvalue > 1e-3


def test_autoregressive_sampling_matches_exact_law(small):
    """The baseline sampler itself follows the enumerated law."""
    model, _ = small
    samples = sample_sequences(
        lambda s: pass_ref.autoregressive_generate(model, PROMPT, max_new_tokens=M, temperature=1.0, seed=s).new_tokens, N
    )
    assert chi_square_test(empirical_counts(samples, V, M), law_of(model, CONFIGS[0])).pvalue > 1e-3


METHODS = {
    "fused": lambda model, la, s, c: pass_ref.pass_generate(model, la, PROMPT, max_new_tokens=M, fused=True, seed=s, **c),
    "lookup": lambda model, la, s, c: pass_ref.prompt_lookup_generate(model, PROMPT, num_draft_tokens=3, max_new_tokens=M, max_ngram=2, seed=s, **c),
    "hybrid": lambda model, la, s, c: pass_ref.pass_generate(model, la, PROMPT, max_new_tokens=M + 1, prompt_lookup=True, lookup_tokens=3, seed=s, **c),
    "fused-hybrid": lambda model, la, s, c: pass_ref.pass_generate(model, la, PROMPT, max_new_tokens=M, fused=True, prompt_lookup=True, seed=s, **c),
}


@pytest.mark.parametrize("config", CONFIGS, ids=["T1", "T0.7-topk3", "T1-topp0.8"])
@pytest.mark.parametrize("method", list(METHODS))
def test_beyond_the_paper_matches_exact_law(small, method, config):
    """One-call PaSS, prompt lookup (one-hot drafts) and the hybrids sample from q's exact law."""
    model, la = small
    outs = [METHODS[method](model, la, s, config) for s in range(N)]
    result = chi_square_test(empirical_counts([o.new_tokens.tolist() for o in outs], V, M), law_of(model, config))
    accepted = sum(sum(o.stats.accepted) for o in outs)
    drafted = sum(sum(o.stats.drafted) for o in outs)
    assert 0.05 * drafted < accepted < 0.95 * drafted  # both acceptance and rejection were exercised
    assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("drafter", ["fused", "lookup"])
def test_negative_control_beyond_the_paper(small, drafter):
    """The same test catches an accept-everything rule in the one-call and the lookup loops."""
    model, la = small
    make = {"fused": lambda: pass_ref.FusedLookaheadDrafter(model, la), "lookup": lambda: pass_ref.PromptLookupDrafter(2)}[drafter]

    def wrong(seed):
        g = torch.Generator().manual_seed(seed)
        out = speculative_loop(model, PROMPT, make(), num_draft_tokens=3, max_new_tokens=M, sampling=SamplingConfig(temperature=1.0),
                               generator=g, verify_fn=accept_every_draft)
        return out.new_tokens

    result = chi_square_test(empirical_counts(sample_sequences(wrong, N), V, M), law_of(model, CONFIGS[0]))
    assert result.pvalue < 1e-6, result


@pytest.mark.parametrize("config", CONFIGS[:2], ids=["T1", "T0.7-topk3"])
def test_negative_control_accept_all_is_caught(small, config):
    """The same test rejects a loop whose verifier accepts every draft."""
    model, la = small
    sampling = SamplingConfig(**config)

    def wrong(seed):
        g = torch.Generator().manual_seed(seed)
        out = speculative_loop(
            model, PROMPT, LookaheadDrafter(model, la), num_draft_tokens=3, max_new_tokens=M + 1,
            sampling=sampling, generator=g, verify_fn=accept_every_draft,
        )
        return out.new_tokens

    result = chi_square_test(empirical_counts(sample_sequences(wrong, N), V, M), law_of(model, config))
    assert result.pvalue < 1e-6, result
