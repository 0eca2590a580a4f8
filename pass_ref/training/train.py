"""Training the look-ahead embeddings (``docs/paper.md``, "Training"): the frozen model, only L x d_emb parameters.

Objective. Insert ``[LA]_1..[LA]_L`` after a real position i of a training sequence x. The
output at ``[LA]_j`` is trained with cross-entropy against x_{i+1+j}, the token j+1 places
ahead of x_i (the model's own output at x_i already predicts x_{i+1}). Nothing else is
supervised; the model's weights never change.

Two equivalent ways to compute it (``lookahead_loss``):

- **naive** (the paper: one insertion per sequence): run the model on x_1..x_i followed by
  the L vectors, with gradient, once per insertion point;
- **masked** (ours): run the real tokens once *without* gradient into a KV cache, then one
  gradient pass over K look-ahead blocks together. Block k sits at positions i_k+1..i_k+L
  and an additive attention mask lets it see only the real prefix x_1..x_{i_k} and its own
  earlier look-ahead tokens. Same loss for the same insertion points (tested), many more
  supervised targets per second.

Options measured in the training ablation (``docs/RESULTS.md``, "Training recipes"):

- ``targets="soft"``: cross-entropy against the frozen model's own distribution q at the
  target position given the true prefix (read off the no-gradient real pass, so free)
  instead of the corpus token: acceptance is agreement with q;
- ``data="self-greedy" | "self-sampled" | "self-mixed"``: train on the model's own
  continuations of the training prompts (``pass_ref.training.distill``), generated inside the
  budget;
- ``deep=True``: per-layer look-ahead vectors (``LookaheadEmbeddings.make_deep``);
- ``init="frequent"``: start from the count-weighted mean embedding of the corpus's most
  frequent tokens.

Shapes: ``B`` sequences, ``T`` tokens per sequence, ``K`` insertion blocks per sequence,
``L`` look-ahead tokens, ``D`` hidden size, ``V`` vocabulary.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import DynamicCache

from ..checks import check_L
from ..lookahead import LookaheadEmbeddings
from .corpora import function_windows, tokenize_windows
from .recipes import PAPER


def sample_insertions(
    batch: int, seq_len: int, num_lookahead: int, blocks: int, generator: torch.Generator, *, first: int = 0
) -> torch.Tensor:
    """(B, K) distinct insertion indices i (0-based last visible real token), sorted per row.

    Every block needs its L targets x_{i+2}..x_{i+L+1} inside the sequence: i <= T - L - 2.
    ``first`` excludes earlier positions (self-distilled windows: only generated targets).
    """
    valid = seq_len - num_lookahead - 1 - first  # i in first..first+valid-1
    if seq_len - num_lookahead - 1 < 1:
        raise ValueError(f"seq_len={seq_len} is too short for L={num_lookahead}: need seq_len >= L + 2")
    if blocks > valid:
        raise ValueError(f"{blocks} insertion blocks do not fit in {valid} valid positions")
    scores = torch.rand(batch, valid, generator=generator)
    return scores.argsort(dim=1)[:, :blocks].sort(dim=1).values + first  # (B, K)


def lookahead_targets(tokens: torch.Tensor, insertions: torch.Tensor, num_lookahead: int) -> torch.Tensor:
    """(B, K, L) targets: x_{i+1+j} for j = 1..L (0-based index i + 1 + j)."""
    offsets = torch.arange(1, num_lookahead + 1, device=tokens.device) + 1  # (L,)
    index = insertions[..., None] + offsets  # (B, K, L)
    return torch.gather(tokens, 1, index.flatten(1)).view_as(index)


def block_attention_mask(insertions: torch.Tensor, seq_len: int, num_lookahead: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive (B, 1, K*L, T + K*L) mask: block k sees x_0..x_{i_k} and its own earlier [LA]s."""
    B, K = insertions.shape
    L = num_lookahead
    device = insertions.device
    real = torch.arange(seq_len, device=device)  # (T,)
    sees_real = real[None, None, :] <= insertions[..., None]  # (B, K, T)
    sees_real = sees_real[:, :, None, :].expand(B, K, L, seq_len).reshape(B, K * L, seq_len)
    block_id = torch.arange(K * L, device=device) // L  # (K*L,)
    slot = torch.arange(K * L, device=device) % L
    sees_block = (block_id[:, None] == block_id[None, :]) & (slot[None, :] <= slot[:, None])  # (K*L, K*L)
    allowed = torch.cat([sees_real, sees_block[None].expand(B, -1, -1)], dim=2)  # (B, K*L, T+K*L)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]  # (B, 1, K*L, T+K*L)


def _masked_logits(model, lookahead: LookaheadEmbeddings, tokens: torch.Tensor, insertions: torch.Tensor):
    """(B, K, L, V) look-ahead logits from one cached pass and one masked gradient pass,
    and the (B, T, V) real-token logits of the no-gradient pass."""
    B, T = tokens.shape
    K = insertions.shape[1]
    L, D = lookahead.weight.shape
    cache = DynamicCache(config=model.config)
    with torch.no_grad():  # the real tokens: frozen model, no gradient needed
        real = model(input_ids=tokens, cache=cache, use_cache=True).logits  # (B, T, V)
    dtype = model.get_input_embeddings().weight.dtype
    weight = lookahead.weight.to(tokens.device)
    embeds = weight.to(dtype)[None, None].expand(B, K, L, D).reshape(B, K * L, D)  # (B, K*L, D)
    positions = (insertions[..., None] + torch.arange(1, L + 1, device=tokens.device)).reshape(B, K * L)
    mask = block_attention_mask(insertions, T, L, dtype)
    with lookahead.applied(model, torch.arange(K * L) % L):  # deep vectors, if any, at every LA slot
        out = model(inputs_embeds=embeds, position_ids=positions, attention_mask=mask, cache=cache, use_cache=True)
    return out.logits.view(B, K, L, -1), real


def _naive_logits(model, lookahead: LookaheadEmbeddings, tokens: torch.Tensor, insertions: torch.Tensor):
    """(B, K, L, V) look-ahead logits, one full forward pass per insertion point (the paper's
    recipe), and the (B, T, V) real-token logits."""
    B, K = insertions.shape
    L = lookahead.num_lookahead
    table = model.get_input_embeddings()
    weight = lookahead.weight.to(tokens.device)
    with torch.no_grad():
        real = model(input_ids=tokens).logits  # (B, T, V)
    rows = []
    for b in range(B):
        blocks = []
        for i in insertions[b].tolist():
            prefix = table(tokens[b : b + 1, : i + 1])  # (1, i+1, D)
            embeds = torch.cat([prefix, weight.to(prefix.dtype)[None]], dim=1)  # (1, i+1+L, D)
            with lookahead.applied(model, torch.arange(L)):
                blocks.append(model(inputs_embeds=embeds).logits[0, -L:])  # (L, V)
        rows.append(torch.stack(blocks))
    return torch.stack(rows), real  # (B, K, L, V), (B, T, V)


def soft_targets(real_logits: torch.Tensor, insertions: torch.Tensor, num_lookahead: int) -> torch.Tensor:
    """(B, K, L, V) logits of q at each look-ahead target: the real output at index i + j.

    [LA]_j after real index i is trained towards x_{i+1+j}; the frozen model's own
    distribution for that token given the true prefix is its output at index i + j.
    """
    B, T, V = real_logits.shape
    index = insertions[..., None] + torch.arange(1, num_lookahead + 1, device=insertions.device)  # (B, K, L)
    flat = index.flatten(1)  # (B, K*L)
    picked = torch.gather(real_logits, 1, flat[..., None].expand(-1, -1, V))  # (B, K*L, V)
    return picked.view(*index.shape, V)


TARGETS = ("data", "soft")


def lookahead_loss(
    model, lookahead: LookaheadEmbeddings, tokens: torch.Tensor, insertions: torch.Tensor, *, method: str = "masked", targets: str = "data"
):
    """Mean cross-entropy of the look-ahead outputs, and the number of correct top-1 guesses per position.

    Args:
        tokens: (B, T) training sequences.  insertions: (B, K) from ``sample_insertions``.
        method: "masked" (one cached pass + one masked pass) or "naive" (one pass per insertion).
        targets: "data" (the paper: the corpus token x_{i+1+j}) or "soft" (the frozen
            model's distribution q for that token given the true prefix).
    Returns:
        ``(loss, correct)``: a scalar with gradient w.r.t. the look-ahead parameters and a
        (L,) int tensor counting top-1 hits at [LA]_1..[LA]_L over the B*K blocks (hits on
        the corpus token for "data", on the argmax of q for "soft").
    """
    if method not in ("masked", "naive"):
        raise ValueError(f"method must be 'masked' or 'naive', got {method!r}")
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {TARGETS}, got {targets!r}")
    L = lookahead.num_lookahead
    logits, real = (_masked_logits if method == "masked" else _naive_logits)(model, lookahead, tokens, insertions)  # (B, K, L, V)
    if targets == "data":
        hard = lookahead_targets(tokens, insertions, L)  # (B, K, L)
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 2), hard.flatten())
    else:
        dtype = torch.promote_types(logits.dtype, torch.float32)  # float32, or float64 in exactness tests
        q = soft_targets(real, insertions, L).to(dtype)  # (B, K, L, V)
        loss = -(torch.softmax(q, dim=-1) * torch.log_softmax(logits.to(dtype), dim=-1)).sum(-1).mean()
        hard = q.argmax(-1)
    correct = (logits.argmax(-1) == hard).sum(dim=(0, 1))  # (L,)
    return loss, correct


# --------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------

def from_frequent_tokens(model, num_lookahead: int, windows: torch.Tensor, top: int = 256) -> LookaheadEmbeddings:
    """Every [LA]_i = the count-weighted mean embedding of the corpus's ``top`` most frequent tokens."""
    counts = torch.bincount(windows.flatten().cpu(), minlength=model.get_input_embeddings().weight.shape[0]).float()
    values, ids = counts.topk(min(top, int((counts > 0).sum())))
    table = model.get_input_embeddings().weight.detach().float().cpu()  # (V, D)
    mean = (table[ids] * (values / values.sum())[:, None]).sum(dim=0)  # (D,)
    la = LookaheadEmbeddings.from_mean_embedding(model, num_lookahead)
    with torch.no_grad():
        la.weight.copy_(mean.expand(num_lookahead, -1))
    la.metadata["init"] = f"frequent_tokens_top{top}"
    return la


INITS = {
    "mean": lambda model, L, windows: LookaheadEmbeddings.from_mean_embedding(model, L),
    "unk": lambda model, L, windows: LookaheadEmbeddings.from_token(model, L),
    "frequent": from_frequent_tokens,
}
DATA = ("corpus", "self-greedy", "self-sampled", "self-mixed")
PROMPTS = ("windows", "functions")  # where a self-distilled window's prompt ends (corpora.function_windows)
INSERTIONS = ("sequence", "batch")  # who shares an insertion point: nobody, or the whole batch (the paper)


@dataclass
class TrainConfig:
    """The shipped recipe: the paper's (``docs/paper.md``, "Training") plus what the training ablation found.

    Departures from the paper, all measured (README, "Training" and "What makes drafts pay"):
    150 steps instead of 10k (the CPU budget); the mean token embedding as the start
    instead of UNK (which does not leave its bad start in 150 steps); and the ablation's
    winner: self-distilled data (``data="self-mixed"``), soft targets (``targets="soft"``)
    and deep look-ahead (``deep=True``). ``TrainConfig.paper()`` is exactly the paper's stated
    settings; ``recipes.deviations(config)`` lists every difference with its reason.
    ``blocks_per_sequence`` is our efficiency knob (same loss per insertion point).
    """

    num_lookahead: int = 4  # L
    steps: int = 150  # optimiser steps (paper: 10k; ours fit the 20-minute CPU budget)
    batch_size: int = 8  # sequences per step (paper: 8)
    lr: float = 0.01  # AdamW learning rate (paper: 0.01)
    warmup: int = 30  # linear warm-up steps, then cosine decay to 0 (paper: 2k of 10k, the same 20 %)
    seq_len: int = 128  # tokens per training window (paper: not stated)
    init: str = "mean"  # starting vectors: "mean" token embedding (ours) or "unk" (the paper's)
    weight_decay: float = 0.0  # no decay: the vectors should stay at the embedding scale
    blocks_per_sequence: int = 16  # K insertion blocks sharing one masked pass (paper: 1)
    insertion: str = "sequence"  # insertion points drawn per "sequence" (ours) or one set per "batch" (the paper's)
    shared: bool = False  # one vector for all L positions (ours: what an engine's parallel drafting can run)
    seed: int = 0  # data order and insertion points
    checkpoint_every: int = 50  # steps between checkpoints when a checkpoint path is given
    targets: str = "soft"  # "soft": the model's own distribution q (ablation winner) | "data": corpus tokens (paper)
    data: str = "self-mixed"  # the model's own continuations (winner) | "corpus" (paper) | "self-greedy" | "self-sampled"
    distill_windows: int = 1024  # windows continued by the model when data != "corpus"
    distill_prompt_len: int = 32  # tokens of each window kept as the prompt
    prompts: str = "windows"  # prompts ending anywhere ("windows") | after a function's docstring ("functions")
    deep: bool = True  # per-layer look-ahead vectors at the LA positions (winner) | False (paper)
    eval_every: int = 0  # steps between validation losses (0: none); training stops when it stops improving
    patience: int = 3  # validations without a new best before stopping (the best vectors are kept)

    @classmethod
    def paper(cls, **overrides) -> "TrainConfig":
        """Exactly the paper's stated settings (``recipes.PAPER``): UNK start, one insertion point per
        batch, corpus tokens as targets, input vectors only, batch 8, lr 0.01, 10k steps with 2k
        warm-up. ``overrides`` change any of them; ``recipes.deviations(config)`` lists the changes."""
        return cls(**{**PAPER, **overrides})

    def __post_init__(self) -> None:
        check_L(self.num_lookahead)
        if self.eval_every < 0 or self.patience < 1:
            raise ValueError("eval_every must be >= 0 and patience >= 1")
        for name in ("steps", "batch_size", "blocks_per_sequence", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0 or not self.lr > 0:
            raise ValueError("warmup must be >= 0 and lr > 0")
        if self.shared and self.deep:
            raise ValueError("shared=True trains one input vector for every position; it cannot be deep (deep=False)")
        if self.insertion not in INSERTIONS:
            raise ValueError(f"insertion must be one of {INSERTIONS}, got {self.insertion!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {sorted(INITS)}, got {self.init!r}")
        if self.targets not in TARGETS:
            raise ValueError(f"targets must be one of {TARGETS}, got {self.targets!r}")
        if self.data not in DATA:
            raise ValueError(f"data must be one of {DATA}, got {self.data!r}")
        if self.prompts not in PROMPTS:
            raise ValueError(f"prompts must be one of {PROMPTS}, got {self.prompts!r}")
        if self.data != "corpus" and not 1 <= self.distill_prompt_len < self.seq_len - self.num_lookahead - 1:
            raise ValueError(f"distill_prompt_len must leave room for targets in windows of {self.seq_len}")
        if self.seq_len < self.num_lookahead + 2:
            raise ValueError(
                f"seq_len={self.seq_len} is too short for L={self.num_lookahead}: a window needs a real "
                "token, then L targets after the next one (seq_len >= L + 2)"
            )


@dataclass
class TrainHistory:
    """Per-step training loss and look-ahead top-1 accuracy per position; validation losses."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[list[float]] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) every eval_every steps
    best_step: int | None = None  # the step whose vectors were kept (early stopping)
    stopped_at: int | None = None  # the step training stopped at, when the validation loss stopped improving


def _schedule(config: TrainConfig):
    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def train_lookahead(
    model,
    tokenizer,
    corpus,
    config: TrainConfig | None = None,
    *,
    lookahead: LookaheadEmbeddings | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    distilled: torch.Tensor | None = None,
    snapshots: str | Path | None = None,
    validation: torch.Tensor | None = None,
) -> tuple[LookaheadEmbeddings, TrainHistory]:
    """Train L look-ahead embeddings on token sequences; the model stays frozen.

    Args:
        model: the frozen causal LM.
        tokenizer: its tokenizer (unused when ``corpus`` is already a tensor).
        corpus: a ``pass_ref.training.corpora.Corpus``, a list of strings (cut into windows of
            ``config.seq_len`` tokens by ``tokenize_windows``, or by ``function_windows`` when
            ``config.prompts == "functions"``), or an (N, T) tensor of token ids, one training
            window per row (N >= 1, T >= L + 2), taken as given.
        config: the recipe (default ``TrainConfig()``).
        lookahead: starting vectors (default: ``config.init``).
        checkpoint: a file; if it exists training resumes from it (same result as an
            uninterrupted run with the same seed), and it is rewritten every
            ``checkpoint_every`` steps and at the end.
        progress: show a tqdm bar with the loss and per-position accuracy.
        distilled: already generated self-distilled windows for ``config.data`` (reused
            across runs of an ablation; the caller counts their generation time).
        snapshots: a directory; the vectors are also saved there as ``step<N>/`` every
            ``checkpoint_every`` steps (acceptance against training length).
        validation: (N, T) held-out windows; with ``config.eval_every`` their loss
            (``evaluate_loss``) is measured every ``eval_every`` steps, training stops after
            ``config.patience`` validations without a new best, and the best vectors are
            returned (early stopping: ``config.steps`` is then a maximum).
    Returns:
        ``(lookahead, history)``. Raises ``FloatingPointError`` on a non-finite loss (the
        last good checkpoint is kept) and ``RuntimeError`` if a model weight changed.
    """
    config = config if config is not None else TrainConfig()
    if isinstance(corpus, torch.Tensor):
        sequences = corpus
    else:
        if tokenizer is None:
            raise ValueError("a tokenizer is needed to cut a text corpus into windows")
        if config.prompts == "functions":
            sequences = function_windows(tokenizer, corpus, config.seq_len, config.distill_prompt_len)
        else:
            sequences = tokenize_windows(tokenizer, corpus, config.seq_len)
    if sequences.ndim != 2 or sequences.shape[0] < 1 or sequences.is_floating_point():
        raise ValueError("the training windows must be a non-empty (N, T) tensor of token ids")
    N, T = sequences.shape
    L = config.num_lookahead
    if T < L + 2:
        raise ValueError(f"sequences of {T} tokens are too short for L={L}: need at least L + 2")
    device = model.get_input_embeddings().weight.device
    lookahead = lookahead if lookahead is not None else INITS[config.init](model, L, sequences)
    if lookahead.num_lookahead != L:
        raise ValueError(f"the starting embeddings have L={lookahead.num_lookahead}, the config says {L}")
    lookahead.check_compatible(model)
    if config.deep and not lookahead.deep:
        lookahead.make_deep(model)
    tie = None
    if config.shared:  # one vector: start from the rows' mean, and give every row the mean gradient
        if lookahead.deep:
            raise ValueError("shared=True needs input vectors only; the starting embeddings are deep")
        with torch.no_grad():
            lookahead.weight.copy_(lookahead.weight.mean(0, keepdim=True).expand_as(lookahead.weight))
        # Equal rows with equal gradients get equal AdamW updates: the rows stay one vector, trained on all L targets.
        tie = lookahead.weight.register_hook(lambda grad: grad.mean(0, keepdim=True).expand_as(grad).clone())
    frozen = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.requires_grad_(False)
    first = 0  # earliest insertion index
    distill_seconds = 0.0
    if config.data != "corpus":
        from .distill import self_distilled_windows

        if T <= config.distill_prompt_len:
            raise ValueError(f"windows of {T} tokens leave nothing to generate after a {config.distill_prompt_len}-token prompt")
        tick = time.perf_counter()
        model.eval()
        if distilled is not None:
            sequences = distilled
        else:
            with torch.no_grad():
                sequences = self_distilled_windows(
                    model, sequences, config.data, num_windows=config.distill_windows,
                    prompt_len=config.distill_prompt_len, seed=config.seed, progress=progress,
                )
            distill_seconds = time.perf_counter() - tick
        N = sequences.shape[0]
        first = config.distill_prompt_len - 1  # every target is a generated token
    K = min(config.blocks_per_sequence, T - L - 1 - first)

    optimizer = torch.optim.AdamW(list(lookahead.parameters()), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    generator = torch.Generator().manual_seed(config.seed)
    history = TrainHistory()
    best = None  # (loss, weight, layer_weight) of the best validation so far (early stopping)
    start = 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        if state["config"] != asdict(config):
            raise ValueError(f"{checkpoint} was written with another config: {state['config']}")
        with torch.no_grad():
            lookahead.weight.copy_(state["weight"])
            if lookahead.deep:
                lookahead.layer_weight.copy_(state["layer_weight"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        history = TrainHistory(**state["history"])
        best = state.get("best")
        start = state["step"] if history.stopped_at is None else config.steps

    def save(step: int) -> None:
        if checkpoint is None:
            return
        state = {
            "config": asdict(config),
            "weight": lookahead.weight.detach().clone(),
            "layer_weight": lookahead.layer_weight.detach().clone() if lookahead.deep else None,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "history": asdict(history),
            "best": best,
            "step": step,
        }
        tmp = checkpoint.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(checkpoint)  # atomic: an interrupted write never corrupts the last good one

    steps = range(start, config.steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, initial=start, total=config.steps, desc=f"training [LA] x {L}")
    if config.eval_every and validation is None:
        raise ValueError("eval_every needs validation windows")
    model_was_training = model.training
    model.eval()  # frozen also means no dropout
    for step in steps:
        rows = torch.randint(0, N, (config.batch_size,), generator=generator)
        tokens = sequences[rows].to(device)  # (B, T)
        draws = config.batch_size if config.insertion == "sequence" else 1  # the paper: one position per batch
        insertions = sample_insertions(draws, T, L, K, generator, first=first).expand(config.batch_size, K).to(device)  # (B, K)
        loss, correct = lookahead_loss(model, lookahead, tokens, insertions, targets=config.targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss at step {step}; the last good checkpoint ({checkpoint}) was kept. "
                "Lower the learning rate or check the data."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        history.loss.append(loss.item())
        history.accuracy.append((correct.float() / (config.batch_size * K)).tolist())
        if progress:
            steps.set_postfix(loss=f"{history.loss[-1]:.3f}", acc=" ".join(f"{a:.2f}" for a in history.accuracy[-1]))
        if config.eval_every and (step + 1) % config.eval_every == 0:
            val_loss, _ = evaluate_loss(model, lookahead, validation, blocks_per_sequence=config.blocks_per_sequence)
            history.validation.append((step + 1, val_loss))
            if best is None or val_loss < best[0]:
                layer = lookahead.layer_weight.detach().clone() if lookahead.deep else None
                best = (val_loss, lookahead.weight.detach().clone(), layer)
                history.best_step = step + 1
            elif (step + 1 - history.best_step) // config.eval_every >= config.patience:
                history.stopped_at = step + 1
                break
        if (step + 1) % config.checkpoint_every == 0:
            save(step + 1)
            if snapshots is not None:
                lookahead.save_pretrained(Path(snapshots) / f"step{step + 1}", overwrite=True)
    if best is not None:  # early stopping keeps the best validated vectors
        with torch.no_grad():
            lookahead.weight.copy_(best[1])
            if lookahead.deep:
                lookahead.layer_weight.copy_(best[2])
    save(config.steps if history.stopped_at is None else history.stopped_at)
    if tie is not None:
        tie.remove()
    model.train(model_was_training)
    for name, p in model.named_parameters():
        if p.grad is not None or not torch.equal(p.detach(), frozen[name]):
            raise RuntimeError(f"model parameter {name} changed or received a gradient: the model must stay frozen")
    lookahead.metadata.update(
        {
            "trained": True,
            **({"shared": True} if config.shared else {}),
            "recipe": asdict(config),
            "final_train_loss": history.loss[-1] if history.loss else None,
            "steps_trained": len(history.loss),
            **({"best_step": history.best_step, "stopped_at": history.stopped_at} if config.eval_every else {}),
            "distill_minutes": round(distill_seconds / 60, 2),
            "parameters": lookahead.num_parameters,
        }
    )
    return lookahead, history


@torch.no_grad()
def evaluate_loss(
    model, lookahead: LookaheadEmbeddings, windows: torch.Tensor, *, blocks_per_sequence: int = 16, batch_size: int = 8, seed: int = 0
) -> tuple[float, list[float]]:
    """Held-out objective: mean look-ahead cross-entropy and top-1 accuracy per position.

    Every window gets ``blocks_per_sequence`` seeded insertion points, so the figure is
    the training objective measured on data the vectors never saw.
    """
    if windows.ndim != 2 or windows.shape[0] < 1:
        raise ValueError("windows must be a non-empty (N, T) tensor of token ids")
    N, T = windows.shape
    L = lookahead.num_lookahead
    K = min(blocks_per_sequence, T - L - 1)
    generator = torch.Generator().manual_seed(seed)
    device = model.get_input_embeddings().weight.device
    total_loss, correct = 0.0, torch.zeros(L)
    for start in range(0, N, batch_size):
        tokens = windows[start : start + batch_size].to(device)  # (B, T)
        insertions = sample_insertions(tokens.shape[0], T, L, K, generator).to(device)  # (B, K)
        loss, hits = lookahead_loss(model, lookahead, tokens, insertions)
        total_loss += loss.item() * tokens.shape[0]
        correct += hits.float().cpu()
    return total_loss / N, (correct / (N * K)).tolist()
