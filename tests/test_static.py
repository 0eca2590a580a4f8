"""The static-cache fast path (``pass_ref.static``): every method unchanged, the same tokens, the same law, clear errors."""

import copy
import time

import pytest
import torch
import transformers
from conftest import PROMPTS, drafter_for, needs_compiler
from conftest import random_lookahead as lookahead
from test_decoding import deep_lookahead
from test_distribution import CONFIGS, accept_every_draft, law_check

import pass_ref
from pass_ref import DecodingConfig, attention, autoregressive_generate, decode, static_model
from pass_ref.cache import CachedModel, open_cache

SIZES = (1, 5, 8, 16)  # a token, L + 1 (L = 4), a short lookup draft, one-call PaSS with its groups


def static_copy(model, compile=False, sizes=SIZES, max_cache_len=96, freeze=True):
    """``model`` on the static path (a copy sharing its weights; the original keeps the eager dynamic cache)."""
    return static_model(model, sizes=sizes, max_cache_len=max_cache_len, compile=compile, freeze=freeze, progress=False)


def same_tokens_as_eager(eager, fast, method, new_tokens=30):
    """Greedy tokens of ``method`` on ``fast`` == on ``eager``, every prompt, plain and deep vectors; drafts accepted."""
    accepted = 0
    for prompt in PROMPTS:
        for la in (lookahead(eager, 4), deep_lookahead(eager, 4)):
            want = decode(eager, drafter_for(method, eager, la), prompt, DecodingConfig(new_tokens))
            got = decode(fast, drafter_for(method, fast, la), prompt, DecodingConfig(new_tokens))
            assert got.new_tokens.tolist() == want.new_tokens.tolist(), (method, prompt)
            assert got.stats.call_sizes == want.stats.call_sizes  # the padding is invisible to the loop
            accepted += sum(got.stats.accepted)
    return accepted


@pytest.fixture(scope="module")
def static_tiny(tiny_model):
    return static_copy(tiny_model)


@pytest.mark.parametrize("method", list(pass_ref.METHODS))
def test_static_path_gives_the_eager_tokens(tiny_model, static_tiny, method):
    """Every method of the table, on the uncompiled static path (float64), returns the eager path's greedy tokens."""
    accepted = same_tokens_as_eager(tiny_model, static_tiny, method)
    assert method == "ar" or accepted > 0


@pytest.mark.parametrize("method", list(pass_ref.METHODS))
def test_prompts_padded_to_a_prefill_size_give_the_eager_tokens(tiny_model, method):
    """With ``prefill_sizes`` the prompt's call is padded to the smallest that holds it (with PaSS's look-ahead
    inputs in it), and every method still returns the eager path's greedy tokens; a longer prompt runs eagerly."""
    fast = static_model(tiny_model, sizes=SIZES, max_cache_len=96, compile=False, prefill_sizes=(4, 12), progress=False)
    s = fast.pass_ref_static
    same_tokens_as_eager(tiny_model, fast, method)
    assert sum(s.prefill_calls_by_size.values()) == 2 * len(PROMPTS)  # every decode's prompt (<= 6 tokens + L = 4 vectors)
    assert s.prefill_calls_by_size[12] > 0
    eager_before = s.eager_calls
    out = autoregressive_generate(fast, list(range(1, 15)), max_new_tokens=3)  # 14 prompt tokens: no prefill size holds it
    assert s.eager_calls == eager_before + 1 and s.owner.length == len(out.sequences) - 1


def test_padded_prompt_leaves_only_its_own_keys(tiny_model):
    """A padded prompt's call returns the kept rows' logits of the eager call and caches exactly its tokens."""
    fast = static_model(tiny_model, sizes=(1,), max_cache_len=32, compile=False, prefill_sizes=(8,), progress=False)
    prompt = PROMPTS[1]
    want = CachedModel(tiny_model).forward(prompt, keep=2)  # (2, V)
    cached = open_cache(fast)
    got = cached.forward(prompt, keep=2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)  # the static path's float32 attention probabilities
    assert cached.length == len(prompt) and fast.pass_ref_static.prefill_calls_by_size == {8: 1}
    torch.testing.assert_close(cached.forward([4])[-1], CachedModel(tiny_model).forward(prompt + [4])[-1], rtol=1e-5, atol=1e-6)


def test_calls_are_padded_to_the_compiled_sizes(tiny_model, static_tiny):
    """Decoding calls run at the compiled sizes (the prompt eagerly at its own length); the cache keeps real tokens only."""
    s = static_tiny.pass_ref_static
    before, eager_before = dict(s.calls_by_size), s.eager_calls
    out = pass_ref.pass_generate(static_tiny, lookahead(tiny_model, 3), PROMPTS[0], max_new_tokens=20, fused=True, groups=[0, 1])
    sizes = out.stats.call_sizes  # real inputs: the prompt + 3 look-ahead vectors, then 1 + K + 2 L = 10 (fewer drafts at the end)
    assert sizes[0] == len(PROMPTS[0]) + 3 and sizes[1] == 10
    assert s.eager_calls - eager_before == 1  # the prompt
    padded = [min(size for size in SIZES if size >= q) for q in sizes[1:]]  # 10 -> 16, 9 -> 16, 8 -> 8, 4 -> 5
    assert {size: s.calls_by_size[size] - before[size] for size in SIZES} == {size: padded.count(size) for size in SIZES}
    assert s.owner.length == len(out.sequences) - 1  # all but the last token cached, no pad or look-ahead KV


def test_the_copy_still_runs_on_a_dynamic_cache(tiny_model, static_tiny):
    """Outside the static path the copy is the same model (its attention setting only changes the kernel)."""
    from pass_ref.cache import CachedModel

    with torch.inference_mode():
        want = CachedModel(tiny_model).forward(PROMPTS[2])
        got = CachedModel(static_tiny).forward(PROMPTS[2])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_forward_time_is_measured_on_the_static_path(tiny_model, static_tiny):
    """``timed`` counts each call of the static path once (the prompt's eager decoder, the padded calls) and puts it back."""
    from pass_ref.experiments.timing import timed

    s = static_tiny.pass_ref_static
    out, t = timed(lambda: pass_ref.pass_generate(static_tiny, lookahead(tiny_model, 4), PROMPTS[1], max_new_tokens=16), static_tiny)
    assert t.forward_calls == out.stats.model_calls and 0 < t.forward_s < t.wall_s
    assert "_run" not in vars(s) and "_prefill" not in vars(s)  # the clocks are taken off again
    # The prompt's LM head is part of its timed call: a head made 0.2 s slower on the prompt shows in call 0.
    heads = []

    def slow_prompt_head(*_):
        heads.append(1)
        if len(heads) == 1:
            time.sleep(0.2)

    slow = static_tiny.get_output_embeddings().register_forward_hook(slow_prompt_head)
    try:
        out, t = timed(lambda: autoregressive_generate(static_tiny, PROMPTS[1], max_new_tokens=3), static_tiny)
    finally:
        slow.remove()
    assert t.forward_calls == out.stats.model_calls == 3 and t.call_seconds[0] >= 0.2 > max(t.call_seconds[1:])
    out, t = timed(lambda: autoregressive_generate(tiny_model, PROMPTS[1], max_new_tokens=6), tiny_model)  # eager: module hooks
    assert t.forward_calls == out.stats.model_calls == 6


def test_static_path_keeps_the_exact_law(small):
    """Two-call and one-call PaSS on the static path sample the target's exact law (T = 1); accept-all is caught."""
    model, la = small
    fast = static_copy(model, sizes=(1, 4, 8), max_cache_len=16)
    for method in ("pass", "pass-fused"):
        result, accepted = law_check(fast, la, method, CONFIGS["T1"])
        assert 0.05 < accepted < 0.95 and result.pvalue > 1e-3, (method, result)
        wrong, _ = law_check(fast, la, method, CONFIGS["T1"], samples=500, verify_fn=accept_every_draft)
        assert wrong.pvalue < 1e-6, (method, wrong)


@needs_compiler
def test_compiled_path_gives_the_eager_float32_tokens():
    """torch.compile'd static path (float32, inductor freezing): every method returns eager float32's greedy tokens,
    the prompts run through a compiled prefill size."""
    eager = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=0, dtype=torch.float32)
    fast = static_model(eager, sizes=SIZES, max_cache_len=96, prefill_sizes=(12,), progress=False)
    assert fast.pass_ref_static.warmed == SIZES
    for method in pass_ref.METHODS:
        same_tokens_as_eager(eager, fast, method, new_tokens=20)
    assert all(fast.pass_ref_static.calls_by_size[size] > 0 for size in SIZES)
    assert fast.pass_ref_static.prefill_calls_by_size[12] == 2 * len(PROMPTS) * len(pass_ref.METHODS)  # every prompt, compiled


@needs_compiler
@pytest.mark.compile
def test_compiled_calls_run_packed_weights_of_their_own_model():
    """Freezing is real (the compiled call runs prepacked matmuls, not plain ones), and two models of the same shapes
    compiled in one process each run on their own weights: a frozen graph holds its model's weights as constants."""
    models = [pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=seed, dtype=torch.float32) for seed in (0, 1)]
    fasts = [static_copy(model, compile=True, sizes=(1,)) for model in models]
    prompt = PROMPTS[0]
    for model, fast in zip(models, fasts):
        want = CachedModel(model).forward(prompt + [7])[-1]  # (V,) eager logits after the prompt and one token
        cached = open_cache(fast)
        cached.forward(prompt)
        got = cached.forward([7])[-1]  # (V,) the compiled size-1 call
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        ops = ops_of_call(fast, 1)
        assert ops & PACKED and "aten::mm" not in ops, sorted(ops)


@needs_compiler
@pytest.mark.compile
def test_autotuned_graphs_are_tuned_and_exact():
    """``autotune=True``: compiling a size benchmarks candidate kernels for its matmuls (inductor's autotuning
    counter moves; without it, it does not), and decoding still returns eager float32's greedy tokens. (One size
    of a one-layer model: each distinct matmul shape costs seconds of benchmarking.)"""
    import torch._inductor.config as inductor_config
    from torch._dynamo.utils import counters

    eager = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=1, seed=0, dtype=torch.float32)
    with inductor_config.patch(force_disable_caches=True):  # an earlier run's tuning, cached on disk, would skip the benchmarks
        counters.clear()
        static_copy(eager, compile=True, sizes=(1,))
        assert counters["inductor"]["select_algorithm_autotune"] == 0
        fast = static_model(eager, sizes=(1,), max_cache_len=96, autotune=True, progress=False)
    assert fast.pass_ref_static.autotune and counters["inductor"]["select_algorithm_autotune"] > 0
    same_tokens_as_eager(eager, fast, "ar", new_tokens=12)


PACKED = {"mkldnn::_linear_pointwise", "mkl::_mkl_linear"}  # what a frozen CPU graph's matmuls run


def ops_of_call(fast, size: int) -> set[str]:
    """The profiler's op names of one call of ``size`` tokens on the static path, after a short prompt."""
    cached = open_cache(fast)
    cached.forward(PROMPTS[0])
    with torch.profiler.profile() as profile:
        cached.forward([7] * size)
    return {event.key for event in profile.key_averages()}


@needs_compiler
@pytest.mark.compile
def test_freezing_is_chosen_per_size():
    """``freeze=(5,)``: the size-5 graph runs prepacked matmuls, the size-1 graph plain ones; tokens stay eager's.
    ``use_freezing`` swaps a size's graph, and ``choose_freezing`` keeps one variant per size, the other dropped."""
    from pass_ref.experiments.latency import choose_freezing

    eager = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=0, dtype=torch.float32)
    fast = static_copy(eager, compile=True, sizes=(1, 5), freeze=(5,))
    static = fast.pass_ref_static
    assert static.frozen == {5}
    assert "aten::mm" in ops_of_call(fast, 1) and not ops_of_call(fast, 1) & PACKED
    assert ops_of_call(fast, 5) & PACKED and "aten::mm" not in ops_of_call(fast, 5)
    for method in ("ar", "pass"):
        same_tokens_as_eager(eager, fast, method, new_tokens=12)
    counts = dict(static.calls_by_size), static.eager_calls
    static.use_freezing(1, True)
    assert (dict(static.calls_by_size), static.eager_calls) == counts  # compiling runs dummy calls, not counted
    assert static.frozen == {1, 5} and ops_of_call(fast, 1) & PACKED
    static.use_freezing(1, False)  # back to the plain graph, already compiled
    assert static.frozen == {5} and "aten::mm" in ops_of_call(fast, 1)
    choices = choose_freezing(fast, (1, 5), context=4, rounds=2, repeats=1)
    assert set(choices) == {1, 5}
    for size, choice in choices.items():
        assert (size in static.frozen) == choice["frozen"] == (choice["plain_over_frozen"] >= 1)
        assert (size, not choice["frozen"]) not in static._graphs  # the loser is dropped
        assert bool(ops_of_call(fast, size) & PACKED) == choice["frozen"]
    same_tokens_as_eager(eager, fast, "pass", new_tokens=12)
    with pytest.raises(ValueError, match="compiled sizes"):
        static.use_freezing(3, True)
    with pytest.raises(ValueError, match="compiled static path"):
        choose_freezing(static_copy(eager), (1,))


def test_the_original_model_is_untouched_and_shares_its_weights():
    """static_model returns a copy with its own attention setting and cache; the weights are the same tensors."""
    model = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=0)
    model.set_attn_implementation("sdpa")
    fast = static_copy(model)
    assert getattr(model, "pass_ref_static", None) is None and fast is not model and fast.config is not model.config
    assert model.config._attn_implementation == "sdpa" and fast.config._attn_implementation == attention.NAME
    assert all(a is b for a, b in zip(model.parameters(), fast.parameters()))


def test_a_new_decode_takes_the_cache_over(tiny_model, static_tiny):
    """One static cache per model: a decode opened later makes the earlier view refuse to run, never corrupt it."""
    s = static_tiny.pass_ref_static
    first = s.open()
    first.forward([1, 2, 3])
    s.open()
    with pytest.raises(RuntimeError, match="reopened"):
        first.forward([4])


def test_bad_input_is_refused(tiny_model):
    """Unsupported dtype or placement, sizes, a cache the model cannot hold, a decode longer than the cache."""
    with pytest.raises(ValueError, match="supports"):
        static_model(copy.deepcopy(tiny_model).to(torch.float16), compile=False)
    spread = copy.deepcopy(tiny_model)
    spread.lm_head.to("meta")
    with pytest.raises(ValueError, match="one device"):
        static_model(spread, compile=False)
    with pytest.raises(ValueError, match="context"):
        static_copy(tiny_model, max_cache_len=tiny_model.config.max_position_embeddings + 1)
    with pytest.raises(ValueError, match="positive ints"):
        static_copy(tiny_model, sizes=(0, 4))
    with pytest.raises(ValueError, match="at most"):
        static_copy(tiny_model, sizes=tuple(range(1, 10)))
    with pytest.raises(ValueError, match="below max_cache_len"):
        static_copy(tiny_model, sizes=(1, 32), max_cache_len=32)
    for freeze in ((1, 3), "1", 1):
        with pytest.raises(ValueError, match="freeze must be"):
            static_copy(tiny_model, sizes=(1, 5), freeze=freeze)
    with pytest.raises(ValueError, match="compiled sizes"):
        static_copy(tiny_model).pass_ref_static.use_freezing(1, True)
    for prefill in ((0,), (96,), "8", tuple(range(1, 7))):
        with pytest.raises(ValueError, match="prefill_sizes"):
            static_model(tiny_model, sizes=(1,), max_cache_len=96, compile=False, prefill_sizes=prefill)
    with pytest.raises(ValueError, match="needs compile=True"):
        static_model(tiny_model, compile=False, autotune=True)
    with pytest.raises(ValueError, match="autotune must be"):
        static_model(tiny_model, compile=False, autotune="yes")
    fast = static_copy(tiny_model, max_cache_len=24)
    with pytest.raises(ValueError, match="static cache.s max_cache_len of 24"):
        autoregressive_generate(fast, PROMPTS[0], max_new_tokens=30)


def test_frozen_graphs_count_a_copy_of_the_weights_each(tiny_model):
    """Decoder and head per frozen size, the decoder per prefill size, never the untied input table; plain graphs add nothing."""
    from pass_ref.experiments.bandwidth import weight_bytes
    from pass_ref.static import frozen_weight_bytes

    one = weight_bytes(tiny_model)  # decoder + head: what one frozen decode graph holds (the tiny model's table is untied)
    head = tiny_model.lm_head.weight.numel() * 8
    assert frozen_weight_bytes(tiny_model, sizes=(1, 5), freeze=True) == 2 * one
    assert frozen_weight_bytes(tiny_model, sizes=(1, 5), freeze=(5,), prefill_sizes=(16, 32)) == one + 2 * (one - head)
    assert frozen_weight_bytes(tiny_model, sizes=(1, 5), freeze=False) == 0
    assert frozen_weight_bytes(tiny_model, sizes=(1, 5), dtype=torch.bfloat16) == 2 * one // 4
    config = transformers.LlamaConfig(vocab_size=50, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      num_key_value_heads=2, tie_word_embeddings=True)
    tied = transformers.LlamaForCausalLM(config)  # the table is the head: a decode graph holds it, a prefill graph does not
    table = tied.get_input_embeddings().weight.numel() * 4
    assert frozen_weight_bytes(tied, sizes=(1,), prefill_sizes=(8,)) == 2 * weight_bytes(tied) - table
    with pytest.raises(ValueError, match="freeze must be"):
        frozen_weight_bytes(tiny_model, sizes=(1,), freeze=(3,))


def test_frozen_graphs_that_cannot_fit_are_refused_before_compiling(tiny_model, monkeypatch):
    """A clear MemoryError up front instead of the kernel's out-of-memory kill after minutes of compilation."""
    import pass_ref.static as static

    free = static.available_memory("cpu")
    assert free is None or free > 0
    monkeypatch.setattr(static, "available_memory", lambda device: 1000)  # bytes: less than one copy of the tiny model
    with pytest.raises(MemoryError, match="2 frozen sizes and 1 prefill sizes.*freeze fewer sizes"):
        static_model(tiny_model, sizes=(1, 5), max_cache_len=96, prefill_sizes=(16,), progress=False)
    static.check_memory(1000, "cpu", "what", "hint")  # what fits passes
    static_copy(tiny_model)  # uncompiled: no frozen graph, nothing to refuse


def test_latency_probe_times_the_static_sizes_asked_for(tiny_model, static_tiny):
    """``measure_static_latency(sizes=...)``: only those of the path's sizes, as a padded curve; sizes it has not, refused."""
    from pass_ref.experiments.latency import measure_static_latency

    curve = measure_static_latency(static_tiny, context=4, repeats=2, warmup=0, sizes=[5, 7])
    assert curve.new_tokens == [5] and curve.padded and len(curve.samples[0]) == 2
    assert measure_static_latency(static_tiny, context=4, repeats=1, warmup=0).new_tokens == list(static_tiny.pass_ref_static.sizes)
    with pytest.raises(ValueError, match="none of sizes"):
        measure_static_latency(static_tiny, context=4, repeats=1, sizes=[3])
    with pytest.raises(ValueError, match="no static path"):
        measure_static_latency(tiny_model, context=4)


@pytest.mark.parametrize("heads, kv_heads", [(4, 4), (4, 2), (6, 1)])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_grouped_attention_equals_transformers_eager_attention(heads, kv_heads, n):
    """Query heads stacked per key/value head give repeat_kv's attention (float64), with a shared or per-head mask."""
    from transformers.models.llama.modeling_llama import eager_attention_forward

    module = torch.nn.Module().eval()
    module.num_key_value_groups = heads // kv_heads
    g = torch.Generator().manual_seed(n)
    q = torch.randn(2, heads, n, 8, generator=g, dtype=torch.float64)
    k, v = (torch.randn(2, kv_heads, 11, 8, generator=g, dtype=torch.float64) for _ in range(2))
    mask = torch.zeros(2, 1, n, 13, dtype=torch.float64)  # wider than the keys: only the first 11 columns count
    mask[0, :, :, 6 + n :] = mask[1, :, :, 3:5] = torch.finfo(torch.float64).min
    want, _ = eager_attention_forward(module, q, k, v, mask[..., :11], 0.3)
    for m in (mask, mask.expand(2, heads, n, 13)):
        got, weights = attention.grouped_attention(module, q, k, v, m, 0.3)
        assert weights is None and got.shape == want.shape == (2, n, heads, 8)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    wrong, _ = attention.grouped_attention(module, q, k, v, torch.zeros_like(mask), 0.3)  # negative control
    assert not torch.allclose(wrong, want)
    with pytest.raises(ValueError, match="soft"):
        attention.grouped_attention(module, q, k, v, mask, 0.3, softcap=30.0)
    with pytest.raises(ValueError, match="share"):
        attention.grouped_attention(module, q[:, :1].repeat(1, 4, 1, 1), k[:, :1].repeat(1, 3, 1, 1), v, mask, 0.3)


def test_static_copy_plain_call_matches_the_original(tiny_model):
    """A plain ``model(ids)`` call on the copy (transformers builds the mask) gives the original's logits."""
    fast = static_copy(tiny_model)
    ids = torch.tensor([PROMPTS[0]])
    torch.testing.assert_close(fast(ids).logits, tiny_model(ids).logits, rtol=1e-9, atol=1e-9)
