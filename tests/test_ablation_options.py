"""The extended recipe's training options on tiny models: soft targets, self-distilled data, deep look-ahead,
frequent-token init. Exactness with every option: real-token logits bit-identical, greedy
equality, the exact sampling law."""

import pytest
import torch
from conftest import PROMPTS

import pass_ref
from pass_ref import LookaheadEmbeddings, SamplingConfig, autoregressive_generate, pass_generate
from pass_ref.cache import CachedModel
from pass_ref.course.exactness import chi_square_test, empirical_counts, exact_sequence_law
from pass_ref.training.distill import continue_windows, self_distilled_windows
from pass_ref.training.train import TrainConfig, lookahead_loss, sample_insertions, soft_targets, train_lookahead


def deep_lookahead(model, L, seed=0, scale=0.3):
    """Random plain and deep look-ahead vectors (untrained: random drafts, still exact)."""
    la = LookaheadEmbeddings.from_token(model, L).make_deep(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        la.weight.copy_(scale * torch.randn(la.weight.shape, generator=g))
        la.layer_weight.copy_(scale * torch.randn(la.layer_weight.shape, generator=g))
    return la.to(model.get_input_embeddings().weight.device)


def data(n=16, t=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 32, (n, 4), generator=g).repeat(1, t // 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("deep", [False, True])
@pytest.mark.parametrize("targets", ["data", "soft"])
def test_masked_equals_naive_with_every_option(dtype, deep, targets):
    m = pass_ref.tiny_llama(seed=0, dtype=dtype)
    la = deep_lookahead(m, 3) if deep else LookaheadEmbeddings.from_random(m, 3, seed=1)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 32, (3, 20), generator=g)
    insertions = sample_insertions(3, 20, 3, 6, g)
    losses, grads = [], []
    for method in ("masked", "naive"):
        la.zero_grad(set_to_none=True)
        loss, _ = lookahead_loss(m, la, tokens, insertions, method=method, targets=targets)
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad.clone() for p in la.parameters()])
    # HF's eager attention takes its softmax in float32 even for float64 models, so the two
    # layouts (different numbers of masked keys) agree to float32 rounding, not to 1e-12.
    assert abs(losses[0] - losses[1]) < 1e-5
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)


def test_soft_targets_are_the_models_distribution_at_the_target():
    m = pass_ref.tiny_llama(seed=0)
    tokens = torch.randint(0, 32, (2, 12), generator=torch.Generator().manual_seed(0))
    insertions = torch.tensor([[0, 5], [2, 7]])
    real = m(input_ids=tokens).logits  # (B, T, V)
    q = soft_targets(real, insertions, 3)  # (B, K, L, V)
    # [LA]_2 after index 5 of row 0 targets x_8, whose law given x_0..x_7 is the output at index 7.
    assert torch.equal(q[0, 1, 1], real[0, 7])
    assert torch.equal(q[1, 0, 0], real[1, 3])


def test_soft_loss_is_minimal_at_the_models_own_distribution():
    """Negative control for the soft objective: a different distribution scores worse."""
    m = pass_ref.tiny_llama(seed=0)
    tokens = torch.randint(0, 32, (2, 12), generator=torch.Generator().manual_seed(0))
    q = torch.softmax(soft_targets(m(input_ids=tokens).logits, torch.tensor([[3], [4]]), 2), -1)
    ce = lambda p: -(q * p.log()).sum(-1).mean()
    assert ce(q) < ce(torch.softmax(torch.randn_like(q), -1))


@pytest.mark.parametrize("dtype", [torch.float32])
def test_deep_lookahead_leaves_real_logits_bit_identical(dtype):
    """Real positions of a drafting call: max |Δ logit| = 0 with deep vectors vs without."""
    m = pass_ref.tiny_llama(vocab_size=64, hidden_size=32, num_layers=3, seed=2, dtype=dtype)
    deep = deep_lookahead(m, 4)
    plain = LookaheadEmbeddings(deep.weight.detach(), base_model=deep.base_model, base_probe=deep.base_probe)
    prompt = [3, 1, 4, 1, 5, 9, 2, 6]
    outs = {}
    for name, la in (("deep", deep), ("plain", plain)):
        cached = CachedModel(m)
        with la.applied(m, torch.arange(4)):
            outs[name] = cached.forward(prompt, pass_ref.ExtraInputs(la.drafting_inputs(m, 4)))  # (8 + 4, V)
    assert (outs["deep"][:8] - outs["plain"][:8]).abs().max().item() == 0.0
    assert (outs["deep"][8:] - outs["plain"][8:]).abs().max().item() > 0  # the LA positions did change
    # ... and equal to the frozen model on the same shape of input (real rows never see what follows;
    # a forward of a different length may round differently, deep look-ahead or not).
    same_shape = m(input_ids=torch.tensor([prompt + [7, 7, 7, 7]])).logits[0, :8]
    assert (outs["deep"][:8] - same_shape).abs().max().item() == 0.0


def test_zero_deep_vectors_draft_like_plain_ones(tiny_model):
    la = LookaheadEmbeddings.from_random(tiny_model, 3, seed=0)
    deep = LookaheadEmbeddings(la.weight.detach(), base_model=la.base_model, base_probe=la.base_probe).make_deep(tiny_model)
    a = pass_generate(tiny_model, la, [1, 2, 3], max_new_tokens=20, temperature=1.0, seed=3)
    b = pass_generate(tiny_model, deep, [1, 2, 3], max_new_tokens=20, temperature=1.0, seed=3)
    assert torch.equal(a.new_tokens, b.new_tokens) and a.stats.accepted == b.stats.accepted


@pytest.mark.parametrize("L", [1, 4, 7])
def test_greedy_equality_with_deep_lookahead(tiny_model, L):
    accepted = 0
    for prompt in PROMPTS:
        ar = autoregressive_generate(tiny_model, prompt, max_new_tokens=30)
        ps = pass_generate(tiny_model, deep_lookahead(tiny_model, L, seed=L), prompt, max_new_tokens=30)
        assert torch.equal(ps.new_tokens, ar.new_tokens)
        accepted += sum(ps.stats.accepted)
    assert accepted > 0


def test_deep_lookahead_samples_the_exact_law():
    """Chi-square against the enumerated law (as tests/test_distribution.py), deep vectors on."""
    V, M, N = 4, 3, 2000
    model = pass_ref.tiny_llama(vocab_size=V, hidden_size=16, seed=3, init_std=0.15)
    la = deep_lookahead(model, 3, seed=0, scale=1.0)
    config = SamplingConfig(1.0)
    outs = [pass_generate(model, la, [1, 2], max_new_tokens=M + 1, seed=s, temperature=1.0) for s in range(N)]
    result = chi_square_test(
        empirical_counts([o.new_tokens.tolist() for o in outs], V, M), exact_sequence_law(model, [1, 2], M, config).numpy()
    )
    accepted = sum(sum(o.stats.accepted) for o in outs)
    drafted = sum(sum(o.stats.drafted) for o in outs)
    assert 0.1 * drafted < accepted < 0.9 * drafted
    assert result.pvalue > 1e-3, result


def test_deep_save_load_and_truncate(tmp_path, tiny_model):
    la = deep_lookahead(tiny_model, 4)
    la.save_pretrained(tmp_path / "d")
    back = LookaheadEmbeddings.from_pretrained(tmp_path / "d", model=tiny_model)
    assert back.deep and torch.equal(back.layer_weight, la.layer_weight.float().cpu())
    assert back.num_parameters == 4 * 32 + 2 * 4 * 32
    short = back.truncated(2)
    assert short.deep and torch.equal(short.layer_weight, back.layer_weight[:, :2])
    prompt = [1, 2, 3]
    a = pass_generate(tiny_model, back, prompt, max_new_tokens=20, num_lookahead=2, temperature=1.0, seed=0)
    b = pass_generate(tiny_model, short, prompt, max_new_tokens=20, temperature=1.0, seed=0)
    assert torch.equal(a.new_tokens, b.new_tokens)  # the prefix property holds for deep vectors too


def test_continue_windows_is_greedy_decoding(tiny_model):
    windows = torch.randint(0, 32, (5, 14), generator=torch.Generator().manual_seed(0))
    out = continue_windows(tiny_model, windows, prompt_len=4, batch_size=2, progress=False)
    assert torch.equal(out[:, :4], windows[:, :4])
    for row in range(5):
        ar = autoregressive_generate(tiny_model, windows[row, :4].tolist(), max_new_tokens=10)
        assert out[row, 4:].tolist() == ar.new_tokens.tolist()


def test_self_distilled_modes(tiny_model):
    windows = torch.randint(0, 32, (20, 14), generator=torch.Generator().manual_seed(0))
    greedy = self_distilled_windows(tiny_model, windows, "self-greedy", num_windows=6, prompt_len=4, progress=False)
    mixed = self_distilled_windows(tiny_model, windows, "self-mixed", num_windows=6, prompt_len=4, progress=False)
    assert greedy.shape == (6, 14) and torch.equal(greedy[:, :4], mixed[:, :4])
    assert torch.equal(greedy[0::2], mixed[0::2]) and not torch.equal(greedy[1::2], mixed[1::2])
    with pytest.raises(ValueError, match="mode"):
        self_distilled_windows(tiny_model, windows, "self-best", num_windows=2)


@pytest.mark.parametrize(
    "options",
    [dict(targets="soft"), dict(deep=True), dict(data="self-greedy", distill_windows=8, distill_prompt_len=4), dict(init="frequent")],
    ids=["soft", "deep", "self-greedy", "frequent"],
)
def test_training_with_each_option(options, tmp_path):
    model = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, seed=0).float()
    before = {n: p.clone() for n, p in model.named_parameters()}
    config = TrainConfig.paper(
        num_lookahead=2, steps=40, batch_size=4, lr=0.05, warmup=5, blocks_per_sequence=6, seq_len=24, checkpoint_every=20,
        **{"init": "mean", "insertion": "sequence", **options},
    )
    la, history = train_lookahead(model, None, data(), config, checkpoint=tmp_path / "c.pt", progress=False)
    assert sum(history.loss[-8:]) / 8 < sum(history.loss[:8]) / 8
    assert all(torch.equal(p, before[n]) and p.grad is None for n, p in model.named_parameters())
    assert la.deep == options.get("deep", False)
    again, _ = train_lookahead(model, None, data(), config, checkpoint=tmp_path / "c.pt", progress=False)  # resumes at the end
    assert torch.equal(again.weight, la.weight)


def test_bad_option_values():
    with pytest.raises(ValueError, match="targets"):
        TrainConfig(targets="teacher")
    with pytest.raises(ValueError, match="data"):
        TrainConfig(data="web")
    with pytest.raises(ValueError, match="init"):
        TrainConfig(init="zeros")
