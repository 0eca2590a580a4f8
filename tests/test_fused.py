"""One-call PaSS, prompt lookup and the hybrid: layout, equivalence with the paper's call,
greedy equality, bookkeeping and bad input (tiny float64 models)."""

import pytest
import torch
from conftest import PROMPTS
from conftest import random_lookahead as lookahead

import pass_ref
from pass_ref import (
    FusedLookaheadDrafter,
    autoregressive_generate,
    group_attention_mask,
    group_position_ids,
    make_drafter,
    pass_generate,
    prompt_lookup_generate,
)
from pass_ref.cache import CachedModel
from pass_ref.drafters.lookup import find_continuation

VARIANTS = {
    "fused": dict(fused=True),
    "fused-groups0": dict(fused=True, groups=[0]),
    "fused-groups01": dict(fused=True, groups=(0, 1)),
    "fused-groups1": dict(fused=True, groups=[1]),  # no group for a = 0: a full rejection is followed by a drafting call
    "fused-groups-none": dict(fused=True, groups=()),  # no group at all: the paper's two calls
    "hybrid": dict(prompt_lookup=True),
    "fused-hybrid": dict(fused=True, prompt_lookup=True, lookup_tokens=6),
}


def deep(model, L, seed=1):
    """Random look-ahead vectors with random deep (per-layer) vectors."""
    la = lookahead(model, L, seed).make_deep(model)
    with torch.no_grad():
        la.layer_weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(seed))
    return la


def test_mask_and_positions_by_hand():
    """2 cached positions, pending y, drafts d1 d2, groups after a=0 and a=2, L=2."""
    mask = group_attention_mask(2, 1, 2, [0, 2], 2, dtype=torch.float64)[0, 0] == 0  # (7, 9) allowed
    #            c0 c1 y  d1 d2 G0.1 G0.2 G2.1 G2.2
    expected = [[1, 1, 1, 0, 0, 0, 0, 0, 0],  # y
                [1, 1, 1, 1, 0, 0, 0, 0, 0],  # d1
                [1, 1, 1, 1, 1, 0, 0, 0, 0],  # d2
                [1, 1, 1, 0, 0, 1, 0, 0, 0],  # G0 [LA]_1: prefix and y only
                [1, 1, 1, 0, 0, 1, 1, 0, 0],  # G0 [LA]_2
                [1, 1, 1, 1, 1, 0, 0, 1, 0],  # G2 [LA]_1: prefix, y, d1, d2
                [1, 1, 1, 1, 1, 0, 0, 1, 1]]  # G2 [LA]_2
    assert mask.tolist() == [[bool(v) for v in row] for row in expected]
    assert group_position_ids(2, 1, 2, [0, 2], 2).tolist() == [2, 3, 4, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="group parent"):
        group_attention_mask(2, 1, 2, [3], 2)


@pytest.mark.parametrize("make", [lookahead, deep], ids=["plain", "deep"])
def test_group_outputs_equal_a_separate_drafting_call(tiny_model, make):
    """Rows of G_a == the paper's drafting call [.., d_a, LA_1..LA_L] made on its own."""
    L, prompt, drafts = 3, [4, 9, 2, 7], [11, 3, 25]
    la = make(tiny_model, L)
    drafter = FusedLookaheadDrafter(tiny_model, la)
    target = CachedModel(tiny_model)
    target.forward(prompt[:-1])
    with torch.inference_mode():
        extra = drafter.extra_inputs(target, 1, len(drafts))  # the validation call of one-call PaSS
        logits = target.forward(prompt[-1:] + drafts, extra, keep=len(drafts) + 1)  # (K+1 + G L, V)
        assert drafter.parents(len(drafts)) == [0, 1, 2, 3]
        groups = dict(zip(drafter.parents(len(drafts)), logits[len(drafts) + 1 :].view(4, L, -1)))
        for a, rows in groups.items():
            fresh = CachedModel(tiny_model)
            fresh.forward((prompt + drafts[:a])[:-1])
            with la.applied(tiny_model, torch.arange(L)):
                paper = fresh.forward((prompt + drafts[:a])[-1:], pass_ref.ExtraInputs(la.drafting_inputs(tiny_model, L)))[-L:]
            # Eager attention takes its softmax in float32 even for a float64 model, and the two
            # calls reduce over rows of different lengths: agreement is to float32 round-off.
            assert (rows - paper).abs().max() < 1e-5, a


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("L", [1, 2, 4, 8])
def test_greedy_variants_equal_autoregressive(tiny_model, variant, L):
    """Greedy one-call PaSS, hybrid and both together give exactly the autoregressive tokens."""
    kwargs = dict(VARIANTS[variant])
    if "groups" in kwargs:
        kwargs["groups"] = [a for a in kwargs["groups"] if a <= L]
    for prompt in PROMPTS:
        ar = autoregressive_generate(tiny_model, prompt, max_new_tokens=30)
        for la in (lookahead(tiny_model, L), deep(tiny_model, L)):
            out = pass_generate(tiny_model, la, prompt, max_new_tokens=30, **kwargs)
            assert torch.equal(out.new_tokens, ar.new_tokens)


@pytest.mark.parametrize("K", [1, 3, 8])
def test_greedy_prompt_lookup_equals_autoregressive(tiny_model, K):
    """Prompt lookup copies drafts from the context and still reproduces greedy decoding."""
    hits = 0
    for prompt in PROMPTS:
        ar = autoregressive_generate(tiny_model, prompt, max_new_tokens=40)
        out = prompt_lookup_generate(tiny_model, prompt, num_draft_tokens=K, max_new_tokens=40)
        assert torch.equal(out.new_tokens, ar.new_tokens)
        hits += sum(out.stats.accepted)
    assert hits > 0  # some copied drafts were accepted


def test_hybrid_riding_along_only_on_a_miss_is_exact(tiny_model):
    """ride_along="miss": the groups skip calls whose drafts were copied; greedy tokens are still AR's."""
    from pass_ref.drafters.lookup import HybridDrafter, PromptLookupDrafter

    for prompt in PROMPTS + [[1, 2, 3, 1, 2, 3, 1, 2]]:
        ar = autoregressive_generate(tiny_model, prompt, max_new_tokens=25)
        drafter = HybridDrafter(PromptLookupDrafter(4), FusedLookaheadDrafter(tiny_model, lookahead(tiny_model, 3)), ride_along="miss")
        out = pass_ref.decode(tiny_model, drafter, prompt, pass_ref.DecodingConfig(25))
        assert torch.equal(out.new_tokens, ar.new_tokens)


def test_fused_makes_one_call_per_iteration(tiny_model):
    """One target call per iteration; with an identity-like drafter tokens per call exceed 1."""
    la = lookahead(tiny_model, 4)
    out = pass_generate(tiny_model, la, PROMPTS[1], max_new_tokens=40, fused=True, trace=True)
    two = pass_generate(tiny_model, la, PROMPTS[1], max_new_tokens=40, trace=True)
    assert out.stats.model_calls == out.stats.iterations  # prefill included
    assert two.stats.model_calls == 2 * two.stats.iterations
    assert all(r.exact_token is None for r in out.trace)


@pytest.mark.parametrize("L", [1, 3, 5])
def test_no_group_is_the_papers_two_calls(tiny_model, L):
    """groups=(): every call is either the drafting call [z] + G_0 or a validation call, so the run
    makes the two-call loop's calls and, sampling with the same generator, the same tokens. (Near the end
    of the budget the two-call loop drafts fewer than L tokens; G_0 keeps its L rows.)"""
    la = lookahead(tiny_model, L)
    for i, prompt in enumerate(PROMPTS):
        for T in (0.0, 1.0):
            one = pass_generate(tiny_model, la, prompt, max_new_tokens=30, fused=True, groups=(), temperature=T, seed=i)
            two = pass_generate(tiny_model, la, prompt, max_new_tokens=30, temperature=T, seed=i)
            assert torch.equal(one.new_tokens, two.new_tokens)
            assert one.stats.accepted == two.stats.accepted and one.stats.drafted == two.stats.drafted
            a, b = one.stats.call_sizes, two.stats.call_sizes
            trimmed = next((k for k in range(1, len(b)) if b[k] < 1 + L), len(b))  # the budget starts to cut drafts
            assert len(a) == len(b) and a[:trimmed] == b[:trimmed] and trimmed > len(b) // 2
            assert all(x >= y for x, y in zip(a[trimmed:], b[trimmed:]))


def test_calls_without_drafts_carry_the_drafting_group(tiny_model):
    """With groups {1}: a call without drafts reads [z] + G_0 (the drafting call), so the next call drafts;
    a call with drafts is followed by drafts exactly when it accepted 1 of them."""
    L = 3
    la = lookahead(tiny_model, L)
    drafter = FusedLookaheadDrafter(tiny_model, la, groups=[1])
    assert drafter.parents(0) == [0] and drafter.parents(3) == [1] and drafter.parents(1) == [1]
    seen = set()
    for prompt in PROMPTS:
        out = pass_generate(tiny_model, la, prompt, max_new_tokens=40, fused=True, groups=[1], trace=True)
        for size, record in zip(out.stats.call_sizes[1:], out.trace[1:]):  # one call per iteration; [0] read the prompt
            K = len(record.draft_tokens)
            assert size == 1 + K + L  # G_0 without drafts, G_1 with
        for before, after in zip(out.trace, out.trace[1:-1]):  # the last iteration may be cut by the budget
            drafted = len(after.draft_tokens) > 0
            want = True if not before.draft_tokens else before.num_accepted == 1
            assert drafted == want
            seen.add((len(before.draft_tokens) > 0, drafted))
    assert seen == {(False, True), (True, True), (True, False)}  # every transition happened


@pytest.mark.parametrize("variant", ["fused", "fused-groups0", "fused-groups-none", "hybrid", "fused-hybrid"])
@pytest.mark.parametrize("L", [1, 3, 6])
def test_eos_and_budget_edges(tiny_model, variant, L):
    """EOS or max_new_tokens inside a block truncates exactly like AR."""
    la = lookahead(tiny_model, L)
    for prompt in PROMPTS:
        full = autoregressive_generate(tiny_model, prompt, max_new_tokens=25).new_tokens.tolist()
        for eos in sorted(set(full)):
            out = pass_generate(tiny_model, la, prompt, max_new_tokens=25, eos_token_id=eos, **VARIANTS[variant])
            assert out.new_tokens.tolist() == full[: full.index(eos) + 1]
        for budget in range(0, 10):
            out = pass_generate(tiny_model, la, prompt, max_new_tokens=budget, **VARIANTS[variant])
            assert out.new_tokens.tolist() == full[:budget]


def test_find_continuation():
    """Longest n-gram first; the latest occurrence with k following tokens, else the longest follow-up."""
    seq = [1, 2, 3, 9, 1, 2, 3, 7, 5, 1, 2, 3]
    assert find_continuation(seq, 2, 3) == [7, 5]  # latest occurrence of (1, 2, 3)
    assert find_continuation(seq, 9, 3) == [9, 1, 2, 3, 7, 5, 1, 2, 3]  # the earlier one is followed by more
    assert find_continuation([5, 5, 5, 5], 3, 2) == [5, 5]  # (5, 5) at 0 is followed by two tokens, at 1 by one
    assert find_continuation([4, 5, 6, 4], 3, 3) == [5, 6, 4]  # falls back to the 1-gram (4)
    assert find_continuation([1, 2, 3], 3, 3) == []
    assert find_continuation([7], 3, 3) == []


def test_bad_input_is_refused(tiny_model):
    """Options that cannot work raise a clear error instead of giving a wrong answer."""
    la = lookahead(tiny_model, 3)
    draft = pass_ref.truncated_draft_model(tiny_model, 1)
    with pytest.raises(TypeError, match="takes no option"):
        make_drafter("speculative", tiny_model, draft_model=draft, groups=[0])  # groups belong to one-call PaSS
    with pytest.raises(ValueError, match="max_ngram"):
        prompt_lookup_generate(tiny_model, [1, 2], num_draft_tokens=2, max_new_tokens=5, max_ngram=0)
    with pytest.raises(ValueError, match="num_draft_tokens"):
        prompt_lookup_generate(tiny_model, [1, 2], num_draft_tokens=0, max_new_tokens=5)
    with pytest.raises(TypeError, match="num_draft_tokens"):
        prompt_lookup_generate(tiny_model, [1, 2], num_draft_tokens=2.0, max_new_tokens=5)
    with pytest.raises(ValueError, match="only 3 look-ahead"):
        pass_generate(tiny_model, la, [1, 2], max_new_tokens=5, num_lookahead=4, fused=True)
    with pytest.raises(ValueError, match="0..L"):
        pass_generate(tiny_model, la, [1, 2], max_new_tokens=5, fused=True, groups=[4])
    with pytest.raises(ValueError, match="only apply to fused"):
        pass_generate(tiny_model, la, [1, 2], max_new_tokens=5, groups=[0])
    with pytest.raises(ValueError, match="lookup_tokens"):
        pass_generate(tiny_model, la, [1, 2], max_new_tokens=5, prompt_lookup=True, lookup_tokens=0)
