"""Training the look-ahead embeddings on a tiny model: same loss both ways, frozen model, resume."""

import pytest
import torch

import pass_ref
from pass_ref.training.train import TrainConfig, block_attention_mask, lookahead_loss, sample_insertions, train_lookahead


@pytest.fixture
def model():
    return pass_ref.tiny_llama(vocab_size=32, hidden_size=32, seed=0).float()


def data(n=16, t=24, seed=0):
    """Repetitive sequences, so there is something for the look-ahead to learn."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 32, (n, 4), generator=g)
    return base.repeat(1, t // 4)  # (n, t): period-4 patterns


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_masked_loss_equals_naive_loss(dtype):
    """One cached pass + one masked pass gives the paper's one-insertion-per-pass loss and gradient."""
    m = pass_ref.tiny_llama(seed=0, dtype=dtype)
    la = pass_ref.LookaheadEmbeddings.from_token(m, 3)
    with torch.no_grad():
        la.weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 32, (3, 20), generator=g)
    insertions = sample_insertions(3, 20, 3, 6, g)
    losses, grads = [], []
    for method in ("masked", "naive"):
        la.weight.grad = None
        loss, correct = lookahead_loss(m, la, tokens, insertions, method=method)
        loss.backward()
        losses.append(loss.item())
        grads.append(la.weight.grad.clone())
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert abs(losses[0] - losses[1]) < tol
    assert torch.allclose(grads[0], grads[1], atol=1e-6)  # the vectors (and so their grads) are float32


def test_block_mask_sees_only_own_prefix():
    """Block k sees x_0..x_{i_k} and the earlier [LA]s of its own block, nothing else."""
    mask = block_attention_mask(torch.tensor([[1, 3]]), 5, 2, torch.float32)[0, 0] == 0  # (4, 9)
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0, 1, 0, 0, 0],
            [1, 1, 0, 0, 0, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0, 0, 1, 0],
            [1, 1, 1, 1, 0, 0, 0, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(mask, expected)


def test_training_lowers_loss_and_keeps_model_frozen(model):
    """Loss falls on learnable data; no model weight changes and none gets a gradient."""
    before = {n: p.clone() for n, p in model.named_parameters()}
    la, history = train_lookahead(
        model,
        None,
        data(),
        TrainConfig.paper(num_lookahead=2, steps=60, batch_size=4, lr=0.05, warmup=5, blocks_per_sequence=8),
        progress=False,
    )
    assert sum(history.loss[-10:]) / 10 < sum(history.loss[:10]) / 10
    assert all(torch.equal(p, before[n]) and p.grad is None for n, p in model.named_parameters())
    assert la.metadata["trained"] and la.weight.grad is not None


def test_training_is_deterministic_and_resumable(model, tmp_path):
    """An interrupted run resumed from its checkpoint equals an uninterrupted run with the same seed."""
    config = TrainConfig.paper(num_lookahead=2, steps=8, batch_size=2, warmup=2, blocks_per_sequence=4, checkpoint_every=4)
    full, _ = train_lookahead(model, None, data(), config, progress=False)
    again, _ = train_lookahead(model, None, data(), config, progress=False)
    assert torch.equal(full.weight, again.weight)
    ckpt = tmp_path / "run.pt"
    # interrupt after 4 steps: the checkpoint written at step 4 is what survives
    with pytest.raises(KeyboardInterrupt):
        _interrupt_after(model, data(), config, ckpt, 5)
    resumed, history = train_lookahead(model, None, data(), config, checkpoint=ckpt, progress=False)
    assert len(history.loss) == 8
    assert torch.equal(resumed.weight, full.weight)


def _interrupt_after(model, sequences, config, ckpt, calls):
    """Run training and raise KeyboardInterrupt inside the ``calls``-th loss computation."""
    import pass_ref.training.train as train

    original = train.lookahead_loss
    count = {"n": 0}

    def flaky(*args, **kwargs):
        count["n"] += 1
        if count["n"] == calls:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    train.lookahead_loss = flaky
    try:
        train_lookahead(model, None, sequences, config, checkpoint=ckpt, progress=False)
    finally:
        train.lookahead_loss = original


def test_nan_loss_stops_with_clear_error(model, tmp_path):
    """A non-finite loss stops training and keeps the last good checkpoint."""
    la = pass_ref.LookaheadEmbeddings.from_token(model, 2)
    with torch.no_grad():
        la.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite"):
        train_lookahead(
            model,
            None,
            data(),
            TrainConfig.paper(num_lookahead=2, steps=3, batch_size=2),
            lookahead=la,
            checkpoint=tmp_path / "c.pt",
            progress=False,
        )
    assert not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize(
    "sequences, config, error",
    [
        (torch.empty(0, 10, dtype=torch.long), TrainConfig.paper(num_lookahead=2), ValueError),
        (data(t=4), TrainConfig.paper(num_lookahead=4), ValueError),
        (data(), None, ValueError),
    ],
)
def test_bad_training_input(model, sequences, config, error):
    """Empty corpus, sequences too short for L, L < 1: clear errors."""
    with pytest.raises(error):
        train_lookahead(model, None, sequences, config or TrainConfig.paper(num_lookahead=0), progress=False)


def test_train_from_text_corpus(model):
    """A list of strings is cut into seq_len windows with the tokenizer; too little text is refused."""
    from test_corpora import CharTokenizer

    text = ["abcd" * 40, "xyz" * 30]
    config = TrainConfig.paper(num_lookahead=2, steps=3, batch_size=2, warmup=1, seq_len=16, blocks_per_sequence=4)
    la, history = train_lookahead(model, CharTokenizer(), text, config, progress=False)
    assert len(history.loss) == 3 and la.num_lookahead == 2
    with pytest.raises(ValueError, match="fewer than one window"):
        train_lookahead(model, CharTokenizer(), ["abc"], config, progress=False)
    with pytest.raises(ValueError, match="tokenizer"):
        train_lookahead(model, None, text, config, progress=False)
    functions = TrainConfig.paper(num_lookahead=2, steps=1, batch_size=2, warmup=1, seq_len=40, blocks_per_sequence=4,
                                  prompts="functions", distill_prompt_len=12)
    with pytest.raises(ValueError, match="documented function"):  # the text has none: function_windows was used
        train_lookahead(model, CharTokenizer(), text, functions, progress=False)


def test_seq_len_too_small_for_L():
    with pytest.raises(ValueError, match="too short"):
        TrainConfig.paper(num_lookahead=8, seq_len=9)


def test_heldout_loss_matches_training_objective(model):
    """evaluate_loss is lookahead_loss averaged over windows, with seeded insertion points."""
    from pass_ref.training.train import evaluate_loss

    la = pass_ref.LookaheadEmbeddings.from_token(model, 2)
    windows = data(n=4)
    loss, acc = evaluate_loss(model, la, windows, blocks_per_sequence=5, batch_size=4, seed=3)
    insertions = sample_insertions(4, windows.shape[1], 2, 5, torch.Generator().manual_seed(3))
    with torch.no_grad():
        direct, correct = lookahead_loss(model, la, windows, insertions)
    assert abs(loss - direct.item()) < 1e-5
    assert acc == (correct.float() / 20).tolist()


def test_cli_train_refuses_existing_output(tmp_path, capsys):
    """An existing output directory is refused before any model is loaded."""
    from pass_ref.cli import main

    assert main(["train", "--domain", "code", "--lookahead", "2", "--out", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cli_train_insertion_rule_is_checked(tmp_path, capsys):
    """--insertion takes the paper's "batch" or our "sequence"; anything else is refused before loading a model."""
    from pass_ref.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--domain", "code", "--lookahead", "2", "--insertion", "token", "--out", str(tmp_path / "x")])
    assert "--insertion" in capsys.readouterr().err


def test_init_choice(model):
    """config.init picks the starting vectors; unknown names are refused."""
    with pytest.raises(ValueError, match="init"):
        TrainConfig.paper(init="zeros")
    model.config.unk_token_id = 5
    table = model.get_input_embeddings().weight.float()
    config = TrainConfig.paper(num_lookahead=2, steps=1, batch_size=2, warmup=0, seq_len=24, blocks_per_sequence=2, lr=1e-9)
    for init, expected in (("mean", table.mean(0)), ("unk", table[5])):
        la, _ = train_lookahead(model, None, data(), TrainConfig(**{**config.__dict__, "init": init}), progress=False)
        assert torch.allclose(la.weight[0], expected, atol=1e-6)


def test_early_stopping_keeps_the_best_validated_vectors(model):
    """With eval_every, training stops after `patience` validations without a new best and returns the best vectors."""
    from pass_ref.training.train import evaluate_loss

    validation = data(n=4, seed=1)
    config = TrainConfig.paper(num_lookahead=2, steps=200, batch_size=4, lr=0.5, warmup=0, blocks_per_sequence=8, eval_every=2, patience=2)
    la, history = train_lookahead(model, None, data(), config, progress=False, validation=validation)
    assert history.stopped_at is not None and history.stopped_at < 200  # an lr this high overshoots: validation stops improving
    assert len(history.loss) == history.stopped_at
    losses = dict(history.validation)
    assert losses[history.best_step] == min(losses.values())
    assert history.stopped_at - history.best_step == 2 * config.patience
    kept, _ = evaluate_loss(model, la, validation, blocks_per_sequence=8)
    assert abs(kept - losses[history.best_step]) < 1e-6  # the returned vectors are the best ones, not the last
    assert la.metadata["best_step"] == history.best_step
    _, plain = train_lookahead(model, None, data(), TrainConfig.paper(**{**config.__dict__, "eval_every": 0}), progress=False)
    assert len(plain.loss) == 200 and plain.stopped_at is None  # without validation every step runs


def test_early_stopping_needs_validation_windows(model):
    with pytest.raises(ValueError, match="validation"):
        train_lookahead(model, None, data(), TrainConfig.paper(num_lookahead=2, steps=4, eval_every=2), progress=False)


def test_paper_config_is_exactly_the_papers_stated_recipe():
    """TrainConfig.paper() holds what the paper states; only unstated settings show up as deviations."""
    from pass_ref.training.recipes import NOT_STATED, deviations

    config = TrainConfig.paper()
    assert (config.steps, config.warmup, config.batch_size, config.lr) == (10_000, 2_000, 8, 0.01)
    assert (config.init, config.insertion, config.blocks_per_sequence) == ("unk", "batch", 1)
    assert (config.targets, config.data, config.deep) == ("data", "corpus", False)
    assert [d.paper for d in deviations(config)] == ["not stated"] * len(NOT_STATED)
    ours = {d.setting: d for d in deviations(TrainConfig())}  # the extended recipe departs in many places
    assert {"optimiser steps", "start of the vectors", "targets", "training data", "vectors inside the layers"} <= set(ours)
    assert ours["optimiser steps"].ours == "150" and ours["optimiser steps"].paper == "10,000"
    assert "self-distillation prompts" not in ours
    functions = {d.setting: d for d in deviations(TrainConfig(prompts="functions"))}
    assert "docstring" in functions["self-distillation prompts"].ours
    with pytest.raises(ValueError, match="prompts"):
        TrainConfig(prompts="docstrings")


def test_shipped_paper_sets_name_every_departure():
    """A shipped "paper" set's table names its budget, its start, its insertion rule and its truncation from L = 8."""
    from pass_ref.training.recipes import deviations_table

    table = deviations_table(pass_ref.load_lookahead("code", 4))
    for needle in ("| optimiser steps | 150 | 10,000 |", "mean token embedding", "| insertion points drawn per | sequence | batch |",
                   "the first vectors of an L = 8 training", "The Stack"):
        assert needle in table
    assert all(line.count("|") == 5 for line in table.splitlines())  # no stray pipe breaks the Markdown table
    with pytest.raises(ValueError, match="no training recipe"):
        deviations_table(pass_ref.LookaheadEmbeddings.from_random(pass_ref.tiny_llama(), 2))


def test_paper_insertion_rule_draws_one_position_per_batch(model, monkeypatch):
    """insertion="batch" (the paper's): every sequence of a batch gets the same insertion points;
    insertion="sequence" (ours): they differ."""
    import pass_ref.training.train as train

    seen = []
    real = train.lookahead_loss

    def spy(model, lookahead, tokens, insertions, **kwargs):
        seen.append(insertions.clone())
        return real(model, lookahead, tokens, insertions, **kwargs)

    monkeypatch.setattr(train, "lookahead_loss", spy)
    for rule in ("batch", "sequence"):
        seen.clear()
        config = TrainConfig.paper(num_lookahead=2, steps=6, batch_size=4, warmup=1, insertion=rule, init="mean")
        train_lookahead(model, None, data(), config, progress=False)
        same = [bool((ins == ins[:1]).all()) for ins in seen]
        assert len(seen) == 6 and all(i.shape == (4, 1) for i in seen)
        assert all(same) if rule == "batch" else not all(same)
    with pytest.raises(ValueError, match="insertion"):
        TrainConfig.paper(insertion="token")


def test_shared_training_keeps_one_vector(model):
    """shared=True: the L rows start and stay one vector (bit for bit) and the loss still falls; without the tie
    the same start drifts apart; deep + shared is refused."""
    config = TrainConfig.paper(num_lookahead=3, steps=40, batch_size=4, lr=0.05, warmup=4, init="mean",
                               insertion="sequence", blocks_per_sequence=6, shared=True)
    start = pass_ref.LookaheadEmbeddings.from_random(model, 3, seed=1)  # distinct rows: made one (their mean)
    la, history = train_lookahead(model, None, data(), config, lookahead=start, progress=False)
    assert la.shared and la.metadata["shared"] and torch.equal(la.weight[0], la.weight[2])
    assert sum(history.loss[-8:]) < sum(history.loss[:8])
    distinct, _ = train_lookahead(model, None, data(), TrainConfig.paper(**{**config.__dict__, "shared": False}),
                                  lookahead=pass_ref.LookaheadEmbeddings.from_random(model, 3, seed=1), progress=False)
    assert not distinct.shared  # the negative control: without the tie the rows drift apart
    assert la.weight.grad is None or torch.equal(la.weight.grad[0], la.weight.grad[1])
    with pytest.raises(ValueError, match="deep"):
        TrainConfig(shared=True)  # the default recipe is deep
