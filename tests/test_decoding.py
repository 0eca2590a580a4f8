"""Invariants of the decoding loop on tiny float64 models: greedy equality, bookkeeping, errors."""

import pytest
import torch
from conftest import PROMPTS, drafter_for
from conftest import random_lookahead as lookahead

import pass_ref
from pass_ref import DecodingConfig, LookaheadEmbeddings, autoregressive_generate, decode, pass_generate, speculative_generate


def deep_lookahead(model, L, seed=1):
    """Random look-ahead vectors with random deep (per-layer) vectors."""
    la = lookahead(model, L, seed).make_deep(model)
    with torch.no_grad():
        la.layer_weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(seed))
    return la


def greedy_check(model, method, L=4, new_tokens=30):
    """``method``'s greedy tokens == autoregressive decoding's, every prompt, plain and deep look-ahead vectors;
    returns the drafts accepted (so a caller can see drafts were really exercised)."""
    accepted = 0
    for prompt in PROMPTS:
        ar = autoregressive_generate(model, prompt, max_new_tokens=new_tokens)
        for la in (lookahead(model, L), deep_lookahead(model, L)):
            out = decode(model, drafter_for(method, model, la), prompt, DecodingConfig(new_tokens))
            assert out.new_tokens.tolist() == ar.new_tokens.tolist(), (method, prompt)
            accepted += sum(out.stats.accepted)
    return accepted


@pytest.mark.parametrize("method", list(pass_ref.METHODS))
def test_greedy_equals_autoregressive_for_every_method(tiny_model, method):
    """Every method of the table returns exactly the autoregressive tokens (float64)."""
    accepted = greedy_check(tiny_model, method)
    assert method == "ar" or accepted > 0  # some drafts were accepted, not only rejected


@pytest.mark.parametrize("method", list(pass_ref.METHODS))
def test_greedy_equals_hf_generate_in_float32(method):
    """Every method of the table, in float32, returns exactly what transformers' greedy generate returns."""
    model = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=0, dtype=torch.float32)
    la = lookahead(model, 4)
    for prompt in PROMPTS:
        ids = torch.tensor([prompt])
        hf = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20, do_sample=False, pad_token_id=0)
        out = decode(model, drafter_for(method, model, la), prompt, DecodingConfig(20))
        assert out.new_tokens.tolist() == hf[0, len(prompt) :].tolist()


@pytest.mark.parametrize("L", range(1, 9))
def test_greedy_pass_equals_autoregressive(tiny_model, L):
    """Greedy PaSS returns exactly the autoregressive tokens, for every prompt."""
    for prompt in PROMPTS:
        ar = autoregressive_generate(tiny_model, prompt, max_new_tokens=30)
        for la in (LookaheadEmbeddings.from_token(tiny_model, L), lookahead(tiny_model, L)):
            ps = pass_generate(tiny_model, la, prompt, max_new_tokens=30)
            assert torch.equal(ps.new_tokens, ar.new_tokens)


def test_greedy_pass_accepts_some_drafts(tiny_model):
    """The greedy-equality runs above really exercise accepted blocks, not only rejections."""
    accepted = 0
    for L in range(1, 9):
        for prompt in PROMPTS:
            accepted += sum(pass_generate(tiny_model, lookahead(tiny_model, L), prompt, max_new_tokens=30).stats.accepted)
    assert accepted > 20


@pytest.mark.parametrize("K", [1, 3, 8])
@pytest.mark.parametrize("layers", [1, 2])
def test_greedy_speculative_equals_autoregressive(tiny_model, K, layers):
    """Greedy speculative sampling with a truncated draft (or the target itself) is exact."""
    draft = pass_ref.truncated_draft_model(tiny_model, layers)  # layers=2 is the whole model
    for prompt in PROMPTS:
        ar = autoregressive_generate(tiny_model, prompt, max_new_tokens=30)
        sp = speculative_generate(tiny_model, draft, prompt, num_draft_tokens=K, max_new_tokens=30)
        assert torch.equal(sp.new_tokens, ar.new_tokens)
        if layers == 2:  # the target drafting for itself: every draft is accepted
            assert sp.stats.accepted == sp.stats.drafted


@pytest.mark.parametrize("L", [1, 3, 6])
def test_eos_and_budget_in_the_middle_of_blocks(tiny_model, L):
    """Stopping on EOS or max_new_tokens inside an accepted block truncates exactly like AR."""
    draft = pass_ref.truncated_draft_model(tiny_model, 2)
    for prompt in PROMPTS:
        full = autoregressive_generate(tiny_model, prompt, max_new_tokens=25).new_tokens.tolist()
        for eos in sorted(set(full)):
            cut = full[: full.index(eos) + 1]
            ar = autoregressive_generate(tiny_model, prompt, max_new_tokens=25, eos_token_id=eos)
            ps = pass_generate(tiny_model, lookahead(tiny_model, L), prompt, max_new_tokens=25, eos_token_id=eos)
            sp = speculative_generate(tiny_model, draft, prompt, num_draft_tokens=L, max_new_tokens=25, eos_token_id=eos)
            assert ar.new_tokens.tolist() == ps.new_tokens.tolist() == sp.new_tokens.tolist() == cut
        for budget in range(0, 12):
            ps = pass_generate(tiny_model, lookahead(tiny_model, L), prompt, max_new_tokens=budget)
            sp = speculative_generate(tiny_model, draft, prompt, num_draft_tokens=L, max_new_tokens=budget)
            assert ps.new_tokens.tolist() == sp.new_tokens.tolist() == full[:budget]


@pytest.mark.parametrize("method", ["ar", "pass", "spec", "fused", "hybrid", "lookup"])
def test_bookkeeping_under_sampling(tiny_model, method):
    """Budget respected, nothing after EOS, cache == sequence - 1 after every iteration, stats add up."""
    draft = pass_ref.truncated_draft_model(tiny_model, 1)
    for seed in range(15):
        prompt = PROMPTS[seed % len(PROMPTS)]
        kwargs = dict(max_new_tokens=17, temperature=1.0, eos_token_id=5, seed=seed, trace=True)
        if method == "ar":
            out = autoregressive_generate(tiny_model, prompt, **kwargs)
        elif method in ("pass", "fused", "hybrid"):
            variant = {"pass": {}, "fused": dict(fused=True), "hybrid": dict(fused=True, prompt_lookup=True)}[method]
            out = pass_generate(tiny_model, lookahead(tiny_model, 4), prompt, **kwargs, **variant)
        elif method == "lookup":
            out = pass_ref.prompt_lookup_generate(tiny_model, prompt, num_draft_tokens=4, **kwargs)
        else:
            out = speculative_generate(tiny_model, draft, prompt, num_draft_tokens=4, **kwargs)
        new = out.new_tokens.tolist()
        assert len(new) <= 17 and len(out.sources) == len(new)
        assert 5 not in new[:-1]
        assert len(new) == 17 or new[-1] == 5
        assert out.sequences.tolist() == prompt + new
        for record in out.trace[:-1]:  # the last iteration may stop mid-block
            assert record.cache_length == record.sequence_length - 1
        assert out.stats.new_tokens == len(new)
        assert out.stats.model_calls <= max(len(new), 1)  # never more than one call per token
        assert all(a <= d for a, d in zip(out.stats.accepted, out.stats.drafted))


@pytest.mark.parametrize("method", ["ar", "pass", "spec", "fused-hybrid"])
def test_same_seed_same_output(tiny_model, method):
    """Sampling is a function of the seed; a different seed changes it."""
    draft = pass_ref.truncated_draft_model(tiny_model, 1)
    la = lookahead(tiny_model, 3)

    def run(seed):
        kwargs = dict(max_new_tokens=30, temperature=1.0, top_k=10, seed=seed)
        if method == "ar":
            return autoregressive_generate(tiny_model, [1, 2], **kwargs).new_tokens
        if method == "pass":
            return pass_generate(tiny_model, la, [1, 2], **kwargs).new_tokens
        if method == "fused-hybrid":
            return pass_generate(tiny_model, la, [1, 2], fused=True, prompt_lookup=True, **kwargs).new_tokens
        return speculative_generate(tiny_model, draft, [1, 2], num_draft_tokens=3, **kwargs).new_tokens

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_autoregressive_matches_transformers_generate(tiny_model):
    """Our greedy loop equals Hugging Face generate (a check of the cache handling)."""
    for prompt in PROMPTS:
        ids = torch.tensor([prompt])
        hf = tiny_model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20, do_sample=False)
        ours = autoregressive_generate(tiny_model, ids, max_new_tokens=20)
        assert hf[0, len(prompt) :].tolist() == ours.new_tokens.tolist()


def test_pass_uses_at_most_one_call_per_token(tiny_model):
    """Each PaSS iteration makes 2 calls and yields at least 2 tokens."""
    out = pass_generate(tiny_model, lookahead(tiny_model, 4), [1, 2, 3], max_new_tokens=40)
    assert out.stats.model_calls <= 40 and out.stats.draft_model_calls == 0
    assert out.stats.model_calls == 2 * out.stats.iterations


def test_num_lookahead_prefix_drafts_like_full_set(tiny_model):
    """By causality, using the first k of L vectors drafts exactly as a k-vector set."""
    la = lookahead(tiny_model, 6)
    sub = LookaheadEmbeddings(la.weight[:3], base_model=la.base_model, base_probe=la.base_probe)
    a = pass_generate(tiny_model, la, [4, 5], num_lookahead=3, max_new_tokens=20, temperature=1.0, seed=3)
    b = pass_generate(tiny_model, sub, [4, 5], max_new_tokens=20, temperature=1.0, seed=3)
    assert torch.equal(a.new_tokens, b.new_tokens) and a.stats.accepted == b.stats.accepted


def test_prompt_forms_are_equivalent(tiny_model):
    """A list, a 1-D tensor and a (1, T) tensor give the same result."""
    outs = [
        autoregressive_generate(tiny_model, p, max_new_tokens=5).new_tokens
        for p in ([3, 4, 5], torch.tensor([3, 4, 5]), torch.tensor([[3, 4, 5]]))
    ]
    assert all(torch.equal(outs[0], o) for o in outs)


def test_zero_new_tokens(tiny_model):
    """max_new_tokens = 0 returns the prompt and makes no model call."""
    out = pass_generate(tiny_model, lookahead(tiny_model, 2), [1, 2], max_new_tokens=0)
    assert out.new_tokens.numel() == 0 and out.stats.model_calls == 0


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda m, la: autoregressive_generate(m, [], max_new_tokens=3), ValueError, "empty"),
        (lambda m, la: autoregressive_generate(m, torch.tensor([[1, 2], [3, 4]]), max_new_tokens=3), ValueError, "batch"),
        (lambda m, la: autoregressive_generate(m, [[1, 2], [3, 4]], max_new_tokens=3), ValueError, "batch"),
        (lambda m, la: autoregressive_generate(m, [1, 2], max_new_tokens=-1), ValueError, "max_new_tokens"),
        (lambda m, la: autoregressive_generate(m, [1, 2], max_new_tokens=2.0), TypeError, "max_new_tokens"),
        (lambda m, la: autoregressive_generate(m, [1, 2], max_new_tokens=3, temperature=-1.0), ValueError, "temperature"),
        (lambda m, la: autoregressive_generate(m, [1, 2], max_new_tokens=3, temperature=1.0, top_p=0.0), ValueError, "top_p"),
        (lambda m, la: autoregressive_generate(m, [1, 2], max_new_tokens=3, temperature=1.0, top_p=1.2), ValueError, "top_p"),
        (lambda m, la: autoregressive_generate(m, [1, 2], max_new_tokens=3, temperature=1.0, top_k=0), ValueError, "top_k"),
        (lambda m, la: autoregressive_generate(m, [1, 99], max_new_tokens=3), ValueError, "token ids"),
        (lambda m, la: autoregressive_generate(m, [1.5], max_new_tokens=3), TypeError, "integer"),
        (lambda m, la: autoregressive_generate(m, [1] * 300, max_new_tokens=3), ValueError, "context"),
        (lambda m, la: autoregressive_generate(m, [1, 2], max_new_tokens=300), ValueError, "context"),
        (lambda m, la: pass_generate(m, la, [1, 2], max_new_tokens=251), ValueError, "context"),
        (lambda m, la: pass_generate(m, la, [1, 2], max_new_tokens=3, num_lookahead=0), ValueError, "L must be >= 1"),
        (lambda m, la: pass_generate(m, la, [1, 2], max_new_tokens=3, num_lookahead=9), ValueError, "only 4"),
        (lambda m, la: pass_generate(m, "la", [1, 2], max_new_tokens=3), TypeError, "LookaheadEmbeddings"),
        (lambda m, la: speculative_generate(m, m, [1, 2], num_draft_tokens=0, max_new_tokens=3), ValueError, "num_draft"),
        (lambda m, la: autoregressive_generate(m, [1], max_new_tokens=3, seed=1, generator=torch.Generator()), ValueError, "seed"),
    ],
)
def test_bad_input_raises(tiny_model, call, error, match):
    """Bad input gets a clear error, never a wrong answer."""
    with pytest.raises(error, match=match):
        call(tiny_model, lookahead(tiny_model, 4))


def test_lookahead_for_another_model_is_refused(tiny_model):
    """Embeddings of the wrong width or for other weights raise instead of mis-drafting."""
    other_width = pass_ref.tiny_llama(vocab_size=32, hidden_size=16)
    other_weights = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, seed=1)
    with pytest.raises(ValueError, match="width"):
        pass_generate(tiny_model, lookahead(other_width, 2), [1, 2], max_new_tokens=3)
    with pytest.raises(ValueError, match="differ"):
        pass_generate(tiny_model, lookahead(other_weights, 2), [1, 2], max_new_tokens=3)


def test_draft_vocabulary_mismatch_is_refused(tiny_model):
    """A draft model with another vocabulary cannot verify against the target."""
    with pytest.raises(ValueError, match="vocabulary"):
        speculative_generate(tiny_model, pass_ref.tiny_llama(vocab_size=16), [1], num_draft_tokens=2, max_new_tokens=3)


def test_kept_rows_reach_the_lm_head_as_one_compact_block(tiny_model):
    """``keep`` hands the LM head only the kept rows, as a block of its own: a view of them inside all T rows makes
    PyTorch's matmul copy the whole transposed head on every call in bfloat16 (hundreds of ms at Qwen's vocabulary)."""
    from pass_ref.cache import CachedModel, ExtraInputs

    seen = []
    handle = tiny_model.get_output_embeddings().register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        tokens = PROMPTS[0] + [3, 1, 4]
        full = CachedModel(tiny_model).forward(tokens)  # (T, V)
        kept = CachedModel(tiny_model).forward(tokens, keep=2)  # (2, V)
        vectors = torch.zeros(3, tiny_model.config.hidden_size, dtype=tiny_model.dtype)  # (M, D)
        with_extra = CachedModel(tiny_model).forward(tokens, ExtraInputs(vectors), keep=1)  # (1 + M, V)
    finally:
        handle.remove()
    torch.testing.assert_close(kept, full[-2:])
    assert with_extra.shape[0] == 1 + 3
    torch.testing.assert_close(with_extra[0], full[-1])
    for block, rows in zip(seen[1:], (2, 4)):
        assert block.shape[1] == rows and block.stride(0) == rows * block.shape[2]  # (1, rows, D), batch stride of its own
